"""Entra tenants, their users, and Teams bot conversations held by the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.ids import guid, short_id

GRAPH_DEFAULT_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
GRAPH_EXTRA_FIELDS = ("accountEnabled", "department", "userType", "otherMails")


@dataclass
class TenantUser:
    """A directory user; `teams_id` is the bot-specific `29:` id Teams uses for them."""

    id: str
    tenant_id: str
    display_name: str
    given_name: str | None
    surname: str | None
    mail: str | None
    user_principal_name: str
    job_title: str | None = None
    department: str | None = None
    user_type: str = "Member"
    account_enabled: bool = True
    bot_installed: bool = False
    bot_blocked: bool = False  # removed the bot: sends get 403 MessageWritesBlocked
    #: The mailbox settings' time zone, as Exchange keeps it: a Windows name.
    time_zone: str = "Tokyo Standard Time"

    @property
    def has_mailbox(self) -> bool:
        """Exchange mailboxes exist for members with ``mail``; a guest's is in their home
        tenant."""
        return bool(self.mail) and self.user_type != "Guest"

    @property
    def teams_id(self) -> str:
        """The `29:` id, unique per bot (so deterministic per tenant+user here)."""
        return "29:1" + short_id("", self.tenant_id, self.id, length=40).lower()

    @property
    def conversation_id(self) -> str:
        """The personal chat's id between the bot and this user."""
        return "a:1" + short_id("", "conv", self.tenant_id, self.id, length=48).lower()

    def graph(self, select: list[str] | None = None) -> dict[str, Any]:
        """The Graph `user` resource, limited to `select` (default properties otherwise)."""
        full: dict[str, Any] = {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.given_name,
            "id": self.id,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "ja-JP",
            "surname": self.surname,
            "userPrincipalName": self.user_principal_name,
            "accountEnabled": self.account_enabled,
            "department": self.department,
            "userType": self.user_type,
            "otherMails": [],
        }
        return {key: full[key] for key in (select or GRAPH_DEFAULT_FIELDS)}


@dataclass
class Tenant:
    """An Entra tenant, with whether its admin consented to the sandbox app."""

    tenant_id: str
    name: str
    domain: str
    users: list[TenantUser]
    consented: bool = False
    #: The app's id in this tenant's org catalog (not the manifest id); uploading the app
    #: again gives it a new one (company-communicator #848). Empty: not in the catalog.
    app_catalog_id: str = ""
    #: Users an app permission policy keeps from having the app installed for them.
    install_blocked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookup indexes after users change."""
        self.by_id = {u.id: u for u in self.users}
        self.by_teams_id = {u.teams_id: u for u in self.users}
        self.by_conversation = {u.conversation_id: u for u in self.users}

    def find_user(self, key: str) -> TenantUser | None:
        """A user by object id, `29:` id, e-mail or UPN."""
        found = self.by_id.get(key) or self.by_teams_id.get(key)
        if found:
            return found
        lowered = key.lower()
        return next(
            (
                u
                for u in self.users
                if (u.mail or "").lower() == lowered or u.user_principal_name.lower() == lowered
            ),
            None,
        )


@dataclass
class Activity:
    """An activity the bot sent into a conversation."""

    id: str
    tenant_id: str
    conversation_id: str
    user_id: str
    body: dict[str, Any]
    received_at: float

    @property
    def text(self) -> str:
        """Readable text: the activity text, or an Adaptive Card's title and text blocks."""
        parts = [str(self.body.get("text") or "")]
        for attachment in self.body.get("attachments") or []:
            content = attachment.get("content") if isinstance(attachment, dict) else None
            if isinstance(content, dict):
                parts += [
                    str(item.get("text", ""))
                    for item in content.get("body", [])
                    if isinstance(item, dict) and item.get("type") == "TextBlock"
                ]
        return "\n".join(p for p in parts if p)

    def public(self) -> dict[str, Any]:
        """JSON for the control API."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "conversation_id": self.conversation_id,
            "user": self.user_id,
            "text": self.text,
            "activity": self.body,
        }


@dataclass
class MicrosoftCode:
    """A pending user sign-in code."""

    tenant_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]
    nonce: str | None
    challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class MicrosoftData:
    """Every tenant and the activities bots sent."""

    tenants: dict[str, Tenant]
    activities: list[Activity] = field(default_factory=list)
    #: User sign-in codes in flight (``sign_in.py``).
    codes: dict[str, MicrosoftCode] = field(default_factory=dict)

    def tenant_for(self, key: str) -> Tenant | None:
        """A tenant by GUID or verified domain."""
        lowered = key.lower()
        return self.tenants.get(lowered) or next(
            (t for t in self.tenants.values() if t.domain == lowered), None
        )

    def conversation(self, conversation_id: str) -> tuple[Tenant, TenantUser] | None:
        """The tenant and user of a personal conversation."""
        for tenant in self.tenants.values():
            user = tenant.by_conversation.get(conversation_id)
            if user is not None:
                return tenant, user
        return None


def user_guid(tenant_id: str, key: str) -> str:
    """Deterministic object id of a user."""
    return guid("user", tenant_id, key)
