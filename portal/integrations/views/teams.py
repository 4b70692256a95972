"""Microsoft Teams: the bot's messaging endpoint and the live list of members who added the bot.

``POST /teams/messages`` is what the Azure Bot resource calls. Order of checks (reliability.md
§3.3): an ``Authorization`` header (401), a JSON object body (400), the Bot Framework JWT
(``botframework.validate``: 401), then the tenant must be connected (else acknowledged and
ignored), then ``activity.id`` de-duplicates retries. Nothing is stored before the JWT passes,
and no input makes it answer 500.
"""

from __future__ import annotations

import json
import logging

from flask import current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...extensions import csrf, db
from ...htmx import trigger
from .. import bp
from ..botframework import BotAuthError, validate
from ..models import InboundEvent
from ..providers import teams
from .common import get_integration_or_404, get_provider_or_404

log = logging.getLogger("portal.integrations.teams.messages")

#: Activities are a few kilobytes; anything far larger is not one.
MAX_ACTIVITY_BYTES = 256 * 1024


@bp.post("/teams/messages")
@csrf.exempt
def teams_messages() -> tuple[Response, int]:
    """Bot Framework activities: install greets and records, uninstall forgets and flags."""
    authorization = request.headers.get("Authorization")
    if not authorization:
        return jsonify(error="unauthorized"), 401
    if (request.content_length or 0) > MAX_ACTIVITY_BYTES:
        return jsonify(error="too_large"), 400
    try:
        activity = json.loads(request.get_data(cache=False) or b"")
    except (ValueError, UnicodeDecodeError):
        return jsonify(error="invalid_json"), 400
    if not isinstance(activity, dict):
        return jsonify(error="invalid_activity"), 400
    try:
        validate(authorization, activity)
    except BotAuthError as problem:
        log.warning("teams activity rejected: %s", problem.reason)
        return jsonify(error="unauthorized"), 401
    kind = teams.activity_kind(activity)
    if kind == "other":
        return jsonify(), 200
    integration = teams.connected_integration(teams.activity_tenant(activity))
    if integration is None:
        log.info("teams activity for a tenant no organization has connected: ignored")
        return jsonify(ignored="unknown_tenant"), 200
    activity_id = activity.get("id")
    if isinstance(activity_id, str) and activity_id:
        db.session.add(InboundEvent(provider="teams", event_id=activity_id[:128]))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return jsonify(duplicate=True), 200
    if kind == "install":
        teams.handle_install(integration, activity)
    else:
        teams.handle_uninstall(integration, activity)
    return jsonify(), 200


@bp.get("/settings/integrations/teams/bot-installs")
@require(Permission.VIEW_ORGANIZATION)
def teams_bot_installs() -> ResponseReturnValue:
    """Step 2's live region: who has added the bot (polled by the page)."""
    provider = get_provider_or_404("teams")
    integration = get_integration_or_404(current_organization(), provider)
    accounts, total = teams.installed_accounts(integration)
    response = current_app.make_response(
        render_template(
            "integrations/providers/teams/_bot_installs.html",
            provider=provider,
            integration=integration,
            accounts=accounts,
            total=total,
            install_link=teams.install_link(),
        )
    )
    seen = request.args.get("seen", type=int)
    if seen is not None and seen != total:
        # Someone added or removed the bot: the member list may show a new link.
        trigger(response, {"members-changed": True})
    return response
