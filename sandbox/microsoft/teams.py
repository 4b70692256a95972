"""Teams-side actions: a member adds or removes the bot, and Teams tells the portal.

Each activity is POSTed to `<portal-url>/teams/messages` with a channel JWT the portal must
validate: iss `https://api.botframework.com`, aud = bot app id, `serviceurl` = the activity's
serviceUrl, five minutes of life, signed by a key in the Bot Framework JWKS endorsed for msteams.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import requests

from sandbox.config import BOTFRAMEWORK_ISSUER, MS_BOT_APP_ID, MS_BOT_NAME
from sandbox.microsoft.models import Activity, Tenant, TenantUser
from sandbox.state import SandboxState


def service_url(state: SandboxState) -> str:
    """The Bot Connector base URL activities carry (HTTPS, trailing slash like Teams')."""
    return f"{state.settings.https_url}/microsoft/botconnector/"


def channel_token(state: SandboxState, serviceurl: str) -> str:
    """A Bot Framework channel JWT for one activity delivery."""
    now = int(time.time())
    claims = {
        "serviceurl": serviceurl,
        "nbf": now,
        "exp": now + state.settings.channel_token_ttl,
        "iss": BOTFRAMEWORK_ISSUER,
        "aud": MS_BOT_APP_ID,
    }
    return state.keys.channel.sign(claims)


def _base_activity(state: SandboxState, tenant: Tenant, user: TenantUser) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": f"f:{uuid.uuid4()}",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "localTimestamp": now.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat(),
        "serviceUrl": service_url(state),
        "channelId": "msteams",
        "from": {"id": user.teams_id, "aadObjectId": user.id, "name": user.display_name},
        "conversation": {
            "conversationType": "personal",
            "id": user.conversation_id,
            "tenantId": tenant.tenant_id,
        },
        "recipient": {"id": f"28:{MS_BOT_APP_ID}", "name": MS_BOT_NAME},
        "channelData": {"tenant": {"id": tenant.tenant_id}},
        "locale": "ja-JP",
        "entities": [{"type": "clientInfo", "locale": "ja-JP", "country": "JP", "platform": "Web"}],
    }


def install_activities(
    state: SandboxState, tenant: Tenant, user: TenantUser
) -> list[dict[str, Any]]:
    """conversationUpdate (membersAdded: bot and user) and installationUpdate (add)."""
    update = _base_activity(state, tenant, user)
    update.update(
        type="conversationUpdate",
        membersAdded=[
            {"id": f"28:{MS_BOT_APP_ID}"},
            {"id": user.teams_id, "aadObjectId": user.id},
        ],
    )
    installation = _base_activity(state, tenant, user)
    installation.update(type="installationUpdate", action="add")
    return [update, installation]


def remove_activity(state: SandboxState, tenant: Tenant, user: TenantUser) -> dict[str, Any]:
    """installationUpdate (remove)."""
    activity = _base_activity(state, tenant, user)
    activity.update(type="installationUpdate", action="remove")
    return activity


def deliver(state: SandboxState, activity: dict[str, Any]) -> int | None:
    """POST one activity to the portal's messaging endpoint; return the portal's status."""
    url = f"{state.settings.portal_url}/teams/messages"
    kind = f"teams:{activity['type']}" + (f":{activity['action']}" if "action" in activity else "")
    if not state.settings.post_to_portal:
        state.record_outbound(kind, url, None, "not sent (post_to_portal off)")
        return None
    headers = {"Authorization": f"Bearer {channel_token(state, activity['serviceUrl'])}"}
    try:
        response = requests.post(url, json=activity, headers=headers, timeout=10)
    except requests.RequestException as error:
        state.record_outbound(kind, url, None, type(error).__name__)
        return None
    state.record_outbound(kind, url, response.status_code, "")
    return response.status_code


def add_bot(state: SandboxState, tenant: Tenant, user: TenantUser) -> list[int | None]:
    """The member adds the bot in Teams: mark it installed and notify the portal."""
    with state.lock:
        user.bot_installed, user.bot_blocked = True, False
        activities = install_activities(state, tenant, user)
    # Outside the lock: the portal will call the Bot Connector back while handling these.
    return [deliver(state, activity) for activity in activities]


def remove_bot(state: SandboxState, tenant: Tenant, user: TenantUser) -> list[int | None]:
    """The member removes the bot: later sends get 403 MessageWritesBlocked."""
    with state.lock:
        user.bot_installed, user.bot_blocked = False, True
        activity = remove_activity(state, tenant, user)
    return [deliver(state, activity)]


# --- Universal Actions: a person presses an Action.Execute of a card the bot sent ---------------


def card_actions(activity: Activity) -> list[dict[str, Any]]:
    """The ``Action.Execute`` buttons of the Adaptive Cards in an activity the bot sent."""
    found = []
    for attachment in activity.body.get("attachments") or []:
        content = attachment.get("content") if isinstance(attachment, dict) else None
        for action in (content or {}).get("actions") or []:
            if isinstance(action, dict) and action.get("type") == "Action.Execute":
                found.append(action)
    return found


def invoke_activity(
    state: SandboxState, tenant: Tenant, user: TenantUser, action: dict[str, Any]
) -> dict[str, Any]:
    """The ``adaptiveCard/action`` invoke Teams sends for one press."""
    invoke = _base_activity(state, tenant, user)
    invoke.update(
        type="invoke",
        name="adaptiveCard/action",
        value={
            "action": {
                "type": "Action.Execute",
                "verb": action.get("verb"),
                "data": action.get("data") or {},
            },
            "trigger": "manual",
        },
    )
    return invoke


def press(state: SandboxState, activity_id: str, verb: str) -> int | None:
    """The member presses ``verb`` on a card: POST the invoke (with a channel token, as for
    every activity) and, when the portal answers with a card, show that card instead."""
    with state.lock:
        activity = next((a for a in state.microsoft.activities if a.id == activity_id), None)
        if activity is None:
            raise LookupError(f"no Teams activity {activity_id}")
        action = next((a for a in card_actions(activity) if a.get("verb") == verb), None)
        tenant = state.microsoft.tenant_for(activity.tenant_id)
        user = tenant.find_user(activity.user_id) if tenant else None
        if action is None or tenant is None or user is None:
            raise LookupError(f"no action {verb!r} on this card")
        invoke = invoke_activity(state, tenant, user, action)
    url = f"{state.settings.portal_url}/teams/messages"
    headers = {"Authorization": f"Bearer {channel_token(state, invoke['serviceUrl'])}"}
    try:
        response = requests.post(url, json=invoke, headers=headers, timeout=10)
    except requests.RequestException as error:
        state.record_outbound("teams:invoke", url, None, type(error).__name__)
        return None
    state.record_outbound("teams:invoke", url, response.status_code, "")
    try:
        answer = response.json()
    except ValueError:
        return response.status_code
    if (
        isinstance(answer, dict)
        and answer.get("statusCode") == 200
        and answer.get("type") == "application/vnd.microsoft.card.adaptive"
        and isinstance(answer.get("value"), dict)
    ):
        with state.lock:
            activity.body = {
                **activity.body,
                "attachments": [{"contentType": answer["type"], "content": answer["value"]}],
            }
    return response.status_code
