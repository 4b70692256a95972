"""Slack Web API methods the portal calls (bodies validate against Slack's OpenAPI spec)."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from sandbox.config import SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
from sandbox.ids import short_id
from sandbox.slack import events
from sandbox.slack.api import Call, SlackError, check_rate, method, parse_blocks
from sandbox.slack.models import SlackMessage, SlackUser, SlackWorkspace

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_TEXT = 40000
EMAIL_SCOPE = "users:read.email"


@method("auth.test")
def auth_test(call: Call) -> dict[str, Any]:
    """Identify the calling bot and its workspace."""
    team = call.team
    return {
        "url": team.url,
        "team": team.name,
        "user": "wistant",
        "team_id": team.team_id,
        "user_id": team.bot_user_id,
        "bot_id": team.bot_id,
        "is_enterprise_install": False,
    }


def _cursor(user_id: str) -> str:
    return base64.b64encode(f"user:{user_id}".encode()).decode()


def _cursor_index(team: SlackWorkspace, cursor: str) -> int:
    try:
        kind, _, user_id = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise SlackError("invalid_cursor") from error
    user = team.by_id.get(user_id)
    if kind != "user" or user is None:
        raise SlackError("invalid_cursor")
    return team.users.index(user)


@method("users.list", scopes=("users:read",))
def users_list(call: Call) -> dict[str, Any]:
    """One page of members, deleted users, bots and invitees included."""
    team = call.team
    try:
        limit = int(call.args.get("limit") or DEFAULT_PAGE)
    except ValueError as error:
        raise SlackError("invalid_arg_name") from error
    limit = min(max(limit, 1), MAX_PAGE)  # Slack clamps rather than rejects
    cursor = str(call.args.get("cursor") or "")
    start = _cursor_index(team, cursor) if cursor else 0
    page = team.users[start : start + limit]
    rest = team.users[start + limit : start + limit + 1]
    with_email = EMAIL_SCOPE in call.token.scopes if call.token else False
    return {
        "members": [user.to_api(with_email) for user in page],
        "cache_ts": int(time.time()),
        "response_metadata": {"next_cursor": _cursor(rest[0].id) if rest else ""},
    }


@method("users.lookupByEmail", scopes=(EMAIL_SCOPE,))
def users_lookup_by_email(call: Call) -> dict[str, Any]:
    """Find a member by e-mail (case-insensitive)."""
    user = call.team.by_email.get(str(call.args.get("email", "")).strip().lower())
    if user is None or user.is_bot:
        raise SlackError("users_not_found")
    return {"user": user.to_api(with_email=True)}


def _human(team: SlackWorkspace, user_id: str) -> SlackUser:
    user = team.by_id.get(user_id)
    if user is None:
        raise SlackError("user_not_found")
    if user.deleted:
        raise SlackError("user_disabled")
    if user.is_bot or user.id == "USLACKBOT":
        raise SlackError("cannot_dm_bot")
    return user


def _open_dm(team: SlackWorkspace, user: SlackUser) -> tuple[str, bool]:
    existing = team.dm_channels.get(user.id)
    if existing:
        return existing, True
    channel = short_id("D", team.team_id, user.id)
    team.dm_channels[user.id] = channel
    return channel, False


@method("conversations.open", scopes=("im:write", "channels:manage", "groups:write", "mpim:write"))
def conversations_open(call: Call) -> dict[str, Any]:
    """Open (or find) the bot's DM with one user."""
    team = call.team
    existing = str(call.args.get("channel") or "")
    if existing:
        if team.dm_user(existing) is None:
            raise SlackError("channel_not_found")
        return {"no_op": True, "already_open": True, "channel": {"id": existing}}
    users = [u for u in str(call.args.get("users") or "").split(",") if u.strip()]
    if not users:
        raise SlackError("users_list_not_supplied")
    if len(users) > 1:
        # Group DMs are out of the portal's scope; the sandbox only models 1:1 DMs.
        raise SlackError("method_not_supported_for_channel_type")
    channel, was_open = _open_dm(team, _human(team, users[0].strip()))
    if was_open:
        return {"no_op": True, "already_open": True, "channel": {"id": channel}}
    return {"channel": {"id": channel}}


def _resolve_channel(team: SlackWorkspace, channel: str) -> tuple[str, SlackUser]:
    if channel.startswith(("U", "W")):
        # Posting to a user id lands in the app's DM (App Home "Messages" tab).
        user = _human(team, channel)
        return _open_dm(team, user)[0], user
    user_id = team.dm_user(channel)
    if user_id is None:
        raise SlackError("not_in_channel" if team.channel_name(channel) else "channel_not_found")
    user = team.by_id[user_id]
    if user.deleted:
        # A deactivated user's DMs are archived [INFERENCE: Slack archives them].
        raise SlackError("is_archived")
    return channel, user


# Its limits are per channel and per workspace (below), not the per-workspace count of a tier.
@method("chat.postMessage", scopes=("chat:write",), own_limits=True)
def chat_post_message(call: Call) -> dict[str, Any]:
    """Post a DM; text and blocks are kept for the inspector."""
    team = call.team
    channel, user = _resolve_channel(team, str(call.args.get("channel") or ""))
    text = str(call.args.get("text") or "")
    blocks = parse_blocks(call.args.get("blocks"))
    # Slack documents text, blocks or attachments as valid content (Apprise sends attachments).
    attachments = call.args.get("attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    check_rate(call.state, "slack:chat.postMessage", f"{team.team_id}:{channel}")
    check_rate(call.state, "slack:chat.postMessage:workspace", team.team_id)
    now = time.time()
    ts = f"{int(now)}.{call.state.next_id() % 1_000_000:06d}"
    team.messages.append(SlackMessage(ts, team.team_id, channel, user.id, text, blocks, now))
    message: dict[str, Any] = {
        "type": "message",
        "text": text,
        "user": team.bot_user_id,
        "bot_id": team.bot_id,
        "ts": ts,
        "team": team.team_id,
    }
    if blocks:
        message["blocks"] = blocks
    return {"channel": channel, "ts": ts, "message": message}


@method("auth.revoke")
def auth_revoke(call: Call) -> dict[str, Any]:
    """Revoke the calling token (unless `test` is set); Slack then sends tokens_revoked."""
    assert call.token is not None
    if str(call.args.get("test", "")).lower() in ("1", "true"):
        return {"revoked": False}
    call.state.revoke_token(call.token)
    events.send_later(call.state, call.team.team_id, [events.tokens_revoked(call.team)])
    return {"revoked": True}


@method("apps.uninstall")
def apps_uninstall(call: Call) -> dict[str, Any]:
    """Uninstall the app from the token's workspace: every token dies, events follow."""
    if call.args.get("client_id") != SLACK_CLIENT_ID:
        raise SlackError("invalid_client_id")
    if call.args.get("client_secret") != SLACK_CLIENT_SECRET:
        raise SlackError("bad_client_secret")
    events.uninstall(call.state, call.team.team_id, later=True)
    return {}
