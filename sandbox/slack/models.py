"""Slack workspaces, users, DMs and pending OAuth codes held by the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.zones import HOME, slack_fields


@dataclass
class SlackUser:
    """A member of a workspace, shaped like users.list's `members[]`."""

    id: str
    team_id: str
    name: str  # the legacy handle
    real_name: str
    display_name: str
    email: str | None
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    deleted: bool = False
    is_bot: bool = False
    is_app_user: bool = False
    is_admin: bool = False
    is_owner: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_invited_user: bool = False
    bot_id: str | None = None
    updated: int = 1_700_000_000
    tz: str = HOME  # IANA; label and offset follow from it at the time of the call

    def to_api(self, with_email: bool) -> dict[str, Any]:
        """The users.list / lookupByEmail representation; e-mail only with users:read.email."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "title": self.title,
            "phone": "",
            "skype": "",
            "status_text": "",
            "status_emoji": "",
            "fields": {},
            "avatar_hash": "g" + self.id[-11:].lower(),
            "image_48": f"https://secure.gravatar.com/avatar/{self.id.lower()}.jpg?s=48",
            "image_72": f"https://secure.gravatar.com/avatar/{self.id.lower()}.jpg?s=72",
            "team": self.team_id,
        }
        if with_email and self.email and not self.is_bot:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        data: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            **slack_fields(self.tz),
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_owner,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": self.is_app_user,
            "updated": self.updated,
        }
        if self.is_invited_user:
            data["is_invited_user"] = True
        return data


@dataclass
class SlackMessage:
    """A message a bot posted; kept for the inspector and the control API."""

    ts: str
    team_id: str
    channel: str
    user_id: str  # the DM's human side
    text: str
    blocks: list[Any] | None
    posted_at: float

    def public(self) -> dict[str, Any]:
        """JSON for the control API."""
        return {
            "ts": self.ts,
            "team_id": self.team_id,
            "channel": self.channel,
            "user": self.user_id,
            "text": self.text,
            "blocks": self.blocks,
        }


@dataclass
class SlackWorkspace:
    """One workspace with its users, public channels and the sandbox app's installation."""

    team_id: str
    name: str
    domain: str
    users: list[SlackUser]
    channels: list[tuple[str, str]]  # (id, name)
    bot_user_id: str
    bot_id: str
    installer_id: str
    installed: bool = False
    webhook_channel: str | None = None
    dm_channels: dict[str, str] = field(default_factory=dict)  # user id -> D…
    messages: list[SlackMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the id and e-mail indexes after users change."""
        self.by_id = {u.id: u for u in self.users}
        self.by_email = {u.email.lower(): u for u in self.users if u.email}

    @property
    def url(self) -> str:
        """The workspace URL auth.test reports."""
        return f"https://{self.domain}.slack.com/"

    def channel_name(self, channel_id: str) -> str | None:
        """Name of a public channel, or None."""
        return next((name for cid, name in self.channels if cid == channel_id), None)

    def dm_user(self, channel_id: str) -> str | None:
        """The human side of one of the bot's DM channels."""
        return next((u for u, d in self.dm_channels.items() if d == channel_id), None)


@dataclass
class SlackCode:
    """A pending authorization code from the consent page."""

    code: str
    team_id: str
    scopes: list[str]
    redirect_uri: str | None
    webhook_channel: str | None
    expires_at: float
    used: bool = False
    #: Sign in with Slack: who signed in, and the portal's nonce for the id_token.
    user_id: str | None = None
    nonce: str | None = None


@dataclass
class SlackData:
    """Every Slack workspace plus the codes in flight."""

    workspaces: dict[str, SlackWorkspace]
    codes: dict[str, SlackCode] = field(default_factory=dict)
