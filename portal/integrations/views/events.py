"""Inbound Slack Events API requests: signed, de-duplicated, acknowledged fast.

Checks, in order (reliability.md §3.1, WH-01…WH-10): the signature over the raw body with the
signing secret (slack_sdk's ``SignatureVerifier``, 300-second window both ways; any malformed
header is a 401, never a 500), then the JSON shape (400), ``url_verification`` (echo the
challenge), the workspace (unknown → ignored), and ``event_id`` (a retry is acknowledged and
dropped). The work is a few row updates, well inside Slack's 3-second deadline.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import current_app, jsonify, request
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from ...extensions import csrf, db
from .. import bp, services
from ..models import InboundEvent, Integration

log = logging.getLogger("portal.integrations.slack.events")


def signature_is_valid(body: bytes, headers: Any) -> bool:
    """Verify ``X-Slack-Signature``; False (never an exception) for any malformed input."""
    secret = current_app.config.get("SLACK_SIGNING_SECRET")
    if not secret:
        return False
    try:
        return SignatureVerifier(str(secret)).is_valid_request(body, dict(headers))
    except (ValueError, TypeError, OverflowError, UnicodeError):
        # The SDK calls int() on the timestamp header: "abc" would otherwise be a 500.
        return False


@bp.post("/slack/events")
@csrf.exempt
def slack_events() -> Response | tuple[Response, int]:
    """Slack's Request URL: url_verification, app_uninstalled, tokens_revoked."""
    body = request.get_data(cache=True)
    if not signature_is_valid(body, request.headers):
        log.warning("slack event with a bad signature rejected")
        return jsonify(error="invalid_signature"), 401
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return jsonify(error="invalid_json"), 400
    if not isinstance(payload, dict):
        return jsonify(error="invalid_payload"), 400
    if payload.get("type") == "url_verification":
        return jsonify(challenge=str(payload.get("challenge", "")))
    event, event_id = payload.get("event"), payload.get("event_id")
    if payload.get("type") != "event_callback" or not isinstance(event, dict) or not event_id:
        return jsonify(error="missing_event"), 400
    integration = db.session.scalar(
        select(Integration).where(
            Integration.provider == "slack",
            Integration.external_id == str(payload.get("team_id", "")),
        )
    )
    if integration is None:
        log.warning("slack event for an unknown workspace ignored")
        return jsonify(ok=True, ignored="unknown_team")
    db.session.add(InboundEvent(provider="slack", event_id=str(event_id)[:128]))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return jsonify(ok=True, duplicate=True)
    _handle(integration, event)
    return jsonify(ok=True)


def _handle(integration: Integration, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "app_uninstalled":
        services.handle_revoked(integration, "app_uninstalled")
    elif kind == "tokens_revoked":
        bots = (event.get("tokens") or {}).get("bot") or []
        if (integration.config or {}).get("bot_user_id") in bots:
            services.handle_revoked(integration, "tokens_revoked")
