"""Microsoft Teams: the bot's messaging endpoint and the live list of members who added the bot.

``POST /teams/messages`` is what the Azure Bot resource calls. Order of checks (reliability.md
§3.3): the Bot Framework JWT from the ``Authorization`` header (``verify_token``: 401) before
the body is read; then the body, counted as it is read (256 KiB, chunked or not: 413), parsed
with the shared limits and checked against the schema of the fields we read (400); then the
activity must belong to the token (endorsed channel, ``serviceUrl`` claim: 401); then the
tenant must be connected (else acknowledged and ignored), then ``activity.id`` de-duplicates
retries (those two, and the work, are ``inbound.receive``). Nothing is parsed before the token
passes, nothing stored before the activity does, and no input makes it answer 500.
"""

from __future__ import annotations

import logging

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from .... import inbound
from ....accounts.permissions import Permission, require
from ....accounts.tenancy import current_organization
from ....extensions import csrf
from ....htmx import is_partial_request, trigger
from ... import bp
from ...views.common import get_integration_or_404, get_provider_or_404
from . import inbound as activities
from . import installs
from .botframework import BotAuthError, check_activity, verify_token

log = logging.getLogger("portal.integrations.teams.messages")

#: Activities are a few kilobytes; anything far larger is not one.
MAX_ACTIVITY_BYTES = 256 * 1024


def _text(limit: int) -> dict[str, object]:
    return {"type": "string", "maxLength": limit}


_ACCOUNT = {
    "type": "object",
    "properties": {"id": _text(256), "aadObjectId": _text(64), "name": _text(512)},
}
#: The fields of an activity that anything here reads; the rest passes unread.
ACTIVITY = inbound.schema(
    {
        "type": "object",
        "required": ["type", "channelId", "serviceUrl"],
        "properties": {
            "type": _text(64),
            "action": _text(64),
            "id": _text(256),
            "channelId": _text(64),
            "serviceUrl": _text(2048),
            "locale": _text(64),
            "from": _ACCOUNT,
            "recipient": _ACCOUNT,
            "conversation": {
                "type": "object",
                "properties": {
                    "id": _text(512),
                    "conversationType": _text(64),
                    "tenantId": _text(64),
                },
            },
            "channelData": {
                "type": "object",
                "properties": {
                    "tenant": {"type": "object", "properties": {"id": _text(64)}},
                },
            },
            "name": _text(64),
            "membersAdded": {"type": "array", "items": _ACCOUNT, "maxItems": 1000},
            "membersRemoved": {"type": "array", "items": _ACCOUNT, "maxItems": 1000},
        },
    }
)


#: An ``adaptiveCard/action`` invoke: the pressed ``Action.Execute`` with our signed value.
CARD_ACTION = inbound.schema(
    {
        "type": "object",
        "required": ["value", "from"],
        "properties": {
            "from": {"type": "object", "required": ["aadObjectId"]},
            "value": {
                "type": "object",
                "required": ["action"],
                "properties": {
                    "action": {
                        "type": "object",
                        "required": ["type", "verb", "data"],
                        "properties": {
                            "type": {"const": "Action.Execute"},
                            "verb": _text(64),
                            "data": {
                                "type": "object",
                                "required": ["value"],
                                "properties": {"value": _text(2000)},
                            },
                        },
                    }
                },
            },
        },
    }
)


@bp.post("/teams/messages")
@csrf.exempt
@inbound.json_endpoint(limit=MAX_ACTIVITY_BYTES)
def teams_messages() -> tuple[Response, int]:
    """Bot Framework activities: install greets and records, uninstall forgets and flags, a
    card action (「確認しました」…) is answered with the updated card."""
    try:
        token = verify_token(request.headers.get("Authorization"))
    except BotAuthError as problem:
        log.warning("teams activity rejected: %s", problem.reason)
        return jsonify(error="unauthorized", detail="A valid Bot Framework token is required."), 401
    try:
        activity = inbound.read_json()
        inbound.validate(activity, ACTIVITY)
        if activities.is_card_action(activity):
            inbound.validate(activity, CARD_ACTION)
    except inbound.MalformedBody as problem:
        return jsonify(error=problem.error, detail=problem.detail), 400
    try:
        check_activity(token, activity)
    except BotAuthError as problem:
        log.warning("teams activity rejected: %s", problem.reason)
        return jsonify(error="unauthorized", detail="A valid Bot Framework token is required."), 401
    if activities.is_card_action(activity):
        # The invoke's answer is the updated card itself (HTTP 200, statusCode inside).
        return jsonify(activities.card_action(activity)), 200
    outcome = activities.receive(activity)
    if outcome == "unknown_tenant":
        log.info("teams activity for a tenant no organization has connected: ignored")
        return jsonify(ignored="unknown_tenant"), 200
    if outcome == "duplicate":
        return jsonify(duplicate=True), 200
    return jsonify(), 200


@bp.get("/settings/integrations/teams/bot-installs")
@require(Permission.VIEW_ORGANIZATION)
def teams_bot_installs() -> ResponseReturnValue:
    """Step 2's live region: who has added the bot (polled by the page)."""
    provider = get_provider_or_404("teams")
    integration = get_integration_or_404(current_organization(), provider)
    accounts, total = activities.installed_accounts(integration)
    response = current_app.make_response(
        render_template(
            "integrations/providers/teams/_bot_installs.html",
            provider=provider,
            integration=integration,
            accounts=accounts,
            total=total,
            install_link=activities.install_link(),
        )
    )
    seen = request.args.get("seen", type=int)
    if seen is not None and seen != total:
        # Someone added or removed the bot: the member list may show a new link.
        trigger(response, {"members-changed": True})
    return response


INSTALL_PROBLEMS = {
    "blocked_by_policy": _l("blocked by an app permission policy"),
    "user_not_found": _l("not found in Microsoft Entra ID"),
    "unreachable": _l("Microsoft Graph could not be reached"),
}


def _app_install_region() -> ResponseReturnValue:
    provider = get_provider_or_404("teams")
    integration = get_integration_or_404(current_organization(), provider)
    run = installs.latest_run(integration)
    pending = installs.pending_accounts(integration, retry=True)
    problems = [
        (account, INSTALL_PROBLEMS.get(code, code))
        for account in pending[:20]
        if (code := ((account.extra or {}).get("install") or {}).get("code"))
    ]
    return render_template(
        "integrations/providers/teams/_app_install.html",
        provider=provider,
        integration=integration,
        run=run,
        pending=len(pending),
        problems=problems,
    )


@bp.get("/settings/integrations/teams/app-install")
@require(Permission.VIEW_ORGANIZATION)
def teams_app_install() -> ResponseReturnValue:
    """The install region: progress while a run goes, else the last run and who is left."""
    return _app_install_region()


@bp.post("/settings/integrations/teams/app-install")
@require(Permission.MANAGE_INTEGRATIONS)
def teams_app_install_start() -> ResponseReturnValue:
    """「…人にインストールする」: install the app for linked members (in the background)."""
    provider = get_provider_or_404("teams")
    integration = get_integration_or_404(current_organization(), provider)
    installs.start_install(integration, current_user.id)
    if is_partial_request():
        return _app_install_region()
    return redirect(url_for("integrations.provider", provider="teams"))
