"""The Bot Connector service (the `serviceUrl` Teams hands the bot).

`POST v3/conversations` creates (finds) the personal chat with a user who installed the bot;
`POST v3/conversations/{id}/activities` stores what the bot says for the inspector. Requests need
a Bot Framework token from the sandbox token endpoint. Teams' per-conversation and per-tenant
rate limits answer 429 (with Retry-After, which Teams does not promise).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.config import BOTFRAMEWORK_RESOURCE, MS_BOT_APP_ID
from sandbox.microsoft.models import Activity, Tenant, TenantUser
from sandbox.microsoft.tokens import TokenRejected, check_bearer
from sandbox.state import SandboxState, current_state
from sandbox.traffic import bearer_token

bp = Blueprint("microsoft_botconnector", __name__, url_prefix="/microsoft/botconnector")

BOT_ID = f"28:{MS_BOT_APP_ID}"


class ConnectorError(Exception):
    """A Bot Connector error answer."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: str = "", **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after, self.extra = retry_after, extra


@bp.errorhandler(ConnectorError)
def _connector_error(failure: ConnectorError) -> tuple[Response, int]:
    if failure.status == 401:
        return jsonify(message="Authorization has been denied for this request."), 401
    response = jsonify(error={"code": failure.code, "message": failure.message, **failure.extra})
    if failure.retry_after:
        response.headers["Retry-After"] = failure.retry_after
    return response, failure.status


def _authenticate(state: SandboxState) -> None:
    try:
        check_bearer(state, bearer_token(), BOTFRAMEWORK_RESOURCE)
    except TokenRejected as rejected:
        raise ConnectorError(401, "Unauthorized", str(rejected)) from rejected


def _rate_limit(state: SandboxState, tenant_id: str, conversation_id: str) -> None:
    buckets = (
        ("microsoft:botconnector:tenant", tenant_id),
        ("microsoft:botconnector:conversation", conversation_id),
    )
    for bucket, key in buckets:
        decision = state.limiter.hit(f"{bucket}|{key}", state.settings.rate_rules(bucket))
        if not decision.allowed:
            raise ConnectorError(
                429, "TooManyRequests", "Too many requests.", decision.retry_after_header
            )


def _check_reachable(user: TenantUser) -> None:
    """Refuse users who never installed the bot, removed it, or were disabled."""
    if user.bot_blocked:
        raise ConnectorError(
            403,
            "ConversationBlockedByUser",
            "User blocked the conversation with the bot.",
            subCode="MessageWritesBlocked",
            errorCode=209,
        )
    if not user.account_enabled:
        raise ConnectorError(
            403, "BotNotInConversationRoster", "The bot is not part of the conversation roster."
        )
    if not user.bot_installed:
        raise ConnectorError(403, "Forbidden", "Bot is not installed in user's personal scope")


def _store(state: SandboxState, tenant: Tenant, user: TenantUser, body: dict[str, Any]) -> str:
    activity_id = f"1:{state.next_id():x}{int(time.time() * 1000):x}"
    state.microsoft.activities.append(
        Activity(activity_id, tenant.tenant_id, user.conversation_id, user.id, body, time.time())
    )
    return activity_id


@bp.post("/v3/conversations")
def create_conversation() -> tuple[Response, int]:
    """Create (or return) the personal conversation with one user."""
    state = current_state()
    body = request.get_json(silent=True) or {}
    with state.lock:
        _authenticate(state)
        if (body.get("bot") or {}).get("id") != BOT_ID:
            raise ConnectorError(400, "BadArgument", "Invalid bot id.")
        members = body.get("members") or []
        if len(members) != 1 or not isinstance(members[0], dict):
            raise ConnectorError(400, "BadArgument", "Exactly one member is required.")
        channel_data = body.get("channelData") or {}
        tenant_id = (channel_data.get("tenant") or {}).get("id") or body.get("tenantId")
        tenant = state.microsoft.tenant_for(str(tenant_id or ""))
        if tenant is None:
            raise ConnectorError(400, "BadArgument", "Tenant id is required.")
        user = tenant.by_teams_id.get(str(members[0].get("id", "")))
        if user is None:
            raise ConnectorError(400, "BadSyntax", "Failed to decrypt pairwise id")
        _check_reachable(user)
        _rate_limit(state, tenant.tenant_id, user.conversation_id)
        answer: dict[str, Any] = {"id": user.conversation_id}
        if isinstance(body.get("activity"), dict):
            answer["activityId"] = _store(state, tenant, user, body["activity"])
    return jsonify(answer), 201


@bp.post("/v3/conversations/<conversation_id>/activities")
@bp.post("/v3/conversations/<conversation_id>/activities/<reply_to>")
def send_activity(conversation_id: str, reply_to: str | None = None) -> tuple[Response, int]:
    """Send an activity (message or Adaptive Card) into a conversation."""
    state = current_state()
    body = request.get_json(silent=True)
    with state.lock:
        _authenticate(state)
        found = state.microsoft.conversation(conversation_id)
        if found is None or not (found[1].bot_installed or found[1].bot_blocked):
            raise ConnectorError(404, "ConversationNotFound", "Conversation not found.")
        tenant, user = found
        if not isinstance(body, dict) or not body.get("type"):
            raise ConnectorError(400, "BadArgument", "Activity type is required.")
        _check_reachable(user)
        _rate_limit(state, tenant.tenant_id, conversation_id)
        activity_id = _store(state, tenant, user, body)
    return jsonify(id=activity_id), 201


@bp.get("/v3/conversations/<conversation_id>/members/<member_id>")
def get_member(conversation_id: str, member_id: str) -> Response:
    """TeamsInfo.get_member: the user's Teams account with e-mail and UPN."""
    state = current_state()
    with state.lock:
        _authenticate(state)
        found = state.microsoft.conversation(conversation_id)
        if found is None or found[1].teams_id != member_id:
            raise ConnectorError(404, "MemberNotFoundInConversation", "Member not found.")
        tenant, user = found
        return jsonify(
            id=user.teams_id,
            name=user.display_name,
            aadObjectId=user.id,
            email=user.mail or user.user_principal_name,
            userPrincipalName=user.user_principal_name,
            givenName=user.given_name,
            surname=user.surname,
            tenantId=tenant.tenant_id,
            userRole="user",
        )
