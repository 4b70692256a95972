"""Inbound Slack Events API requests: signed, de-duplicated, acknowledged fast.

Also ``POST /slack/interactions`` (the DM's buttons): the same signature check first, then the
``payload`` form field against its schema (``interactions.receive`` does the rest).

Checks, in order (reliability.md §3.1, WH-01…WH-10): the body's size as it is read (256 KiB,
chunked or not: 413), the signature over the raw body with the signing secret (slack_sdk's
``SignatureVerifier``, 300-second window both ways; any malformed header is a 401, never a
500), and only then the JSON (depth, encoding, 64-bit integers) and the schema of the fields we
read (400 with ``X-Slack-No-Retry``: an authentic but unusable body would fail the same way on
each of Slack's retries), ``url_verification`` (echo the challenge), the workspace (unknown →
ignored), and ``event_id`` (a retry is acknowledged and dropped): the last two, and acting on
the event, are ``inbound.receive``. The work is a few row updates, well inside Slack's
3-second deadline.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from flask import current_app, jsonify, request
from slack_sdk.signature import SignatureVerifier
from werkzeug.wrappers import Response

from .... import inbound
from ....extensions import csrf
from ... import bp
from . import inbound as events
from . import interactions

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


#: Slack's envelope and the events we act on, as far as we read them. Other event types pass
#: the envelope check and are acknowledged unread, so a new kind of event never fails.
ENVELOPE = inbound.schema(
    {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "maxLength": 64},
            "challenge": {"type": "string", "maxLength": 256},
            "team_id": {"type": "string", "maxLength": 64},
            "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "event": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "maxLength": 64}},
            },
        },
        "if": {"properties": {"type": {"const": "event_callback"}}},
        "then": {"required": ["event", "event_id", "team_id"]},
    }
)
TOKENS_REVOKED = inbound.schema(
    {
        "type": "object",
        "required": ["tokens"],
        "properties": {
            "tokens": {
                "type": "object",
                "properties": {
                    "bot": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
                    "oauth": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
                },
            }
        },
    }
)
_NAME = {"type": "string", "maxLength": 1000}
_FLAG = {"type": "boolean"}
#: team_join (a new member) and user_change (a profile changed, or the member left): the
#: users.list fields ``client.member_entry`` reads, with their types.
USER_EVENT = inbound.schema(
    {
        "type": "object",
        "required": ["user"],
        "properties": {
            "user": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1, "maxLength": 32},
                    "name": _NAME,
                    "real_name": _NAME,
                    "deleted": _FLAG,
                    "is_bot": _FLAG,
                    "is_app_user": _FLAG,
                    "is_invited_user": _FLAG,
                    "is_restricted": _FLAG,
                    "is_ultra_restricted": _FLAG,
                    # Any JSON on purpose: member_entry keeps only a valid IANA name, so a
                    # bad zone costs the zone, never the rest of the event.
                    "tz": {},
                    "profile": {
                        "type": "object",
                        "properties": {
                            "email": {"type": "string", "maxLength": 254},
                            "real_name": _NAME,
                            "display_name": _NAME,
                        },
                    },
                },
            }
        },
    }
)
EVENT_SCHEMAS = {
    "tokens_revoked": TOKENS_REVOKED,
    "team_join": USER_EVENT,
    "user_change": USER_EVENT,
}
#: Events are a few kilobytes; Slack documents no maximum, 256 KiB leaves room.
MAX_EVENT_BYTES = 256 * 1024


def _unsigned() -> tuple[Response, int] | None:
    """401 unless the raw body (read within the view's limit, before anything parses it)
    carries a valid ``X-Slack-Signature``: shared by every Slack request URL."""
    if signature_is_valid(inbound.read_body(), request.headers):
        return None
    log.warning("slack request with a bad signature rejected: %s", request.path)
    return jsonify(error="invalid_signature", detail="The request signature is not valid."), 401


def _refuse(error: str, detail: str) -> tuple[Response, int]:
    """400 for an authentic request we cannot use. Slack retries any non-2xx three times; the
    same bytes would fail the same way, so ``X-Slack-No-Retry`` asks it not to."""
    response = jsonify(error=error, detail=detail)
    response.headers["X-Slack-No-Retry"] = "1"
    return response, 400


@bp.post("/slack/events")
@csrf.exempt
@inbound.json_endpoint(limit=MAX_EVENT_BYTES)
def slack_events() -> Response | tuple[Response, int]:
    """Slack's Request URL: url_verification, app_uninstalled, tokens_revoked, team_join,
    user_change."""
    if refused := _unsigned():
        return refused
    try:
        payload = inbound.parse_json(inbound.read_body())
        inbound.validate(payload, ENVELOPE)
        event = payload.get("event") or {}
        if event.get("type") in EVENT_SCHEMAS:
            inbound.validate(event, EVENT_SCHEMAS[event["type"]])
    except inbound.MalformedBody as problem:
        log.warning("signed slack event refused: %s", problem.detail)
        return _refuse(problem.error, problem.detail)
    if payload["type"] == "url_verification":
        return jsonify(challenge=payload.get("challenge", ""))
    if payload["type"] != "event_callback":
        return _refuse("missing_event", "Only event_callback requests carry events.")
    outcome = events.receive(payload["team_id"], payload["event_id"], event)
    if outcome == "unknown_team":
        log.warning("slack event for an unknown workspace ignored")
        return jsonify(ok=True, ignored="unknown_team")
    if outcome == "duplicate":
        return jsonify(ok=True, duplicate=True)
    return jsonify(ok=True)


#: A block_actions payload, as far as we read it.
BLOCK_ACTIONS = inbound.schema(
    {
        "type": "object",
        "required": ["type", "team", "user", "actions", "response_url"],
        "properties": {
            "type": {"const": "block_actions"},
            "team": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64}},
            },
            "user": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64}},
            },
            "response_url": {"type": "string", "minLength": 1, "maxLength": 2000},
            "actions": {
                "type": "array",
                "minItems": 1,
                "maxItems": 25,
                "items": {
                    "type": "object",
                    "required": ["action_id"],
                    "properties": {
                        "action_id": {"type": "string", "minLength": 1, "maxLength": 255},
                        "value": {"type": "string", "maxLength": 2000},
                    },
                },
            },
        },
    }
)
#: An interaction payload is a few kilobytes (the message's blocks ride along).
MAX_INTERACTION_BYTES = 128 * 1024


def _payload_field(body: bytes) -> Any:
    """The ``payload`` form field of a signed interaction, parsed; exactly one, UTF-8 JSON."""
    try:
        fields = parse_qsl(body.decode("utf-8"), strict_parsing=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise inbound.MalformedBody("malformed_form", "The body is not a form.") from None
    values = [value for name, value in fields if name == "payload"]
    if len(values) != 1:
        raise inbound.MalformedBody("missing_payload", "Exactly one 'payload' field is required.")
    return inbound.parse_json(values[0].encode("utf-8"))


@bp.post("/slack/interactions")
@csrf.exempt
@inbound.json_endpoint(limit=MAX_INTERACTION_BYTES)
def slack_interactions() -> Response | tuple[Response, int]:
    """Slack's Interactivity Request URL: the DM's buttons (block_actions)."""
    if refused := _unsigned():
        return refused
    try:
        payload = _payload_field(inbound.read_body())
        inbound.validate(payload, BLOCK_ACTIONS)
    except inbound.MalformedBody as problem:
        log.warning("signed slack interaction refused: %s", problem.detail)
        return _refuse(problem.error, problem.detail)
    outcome = interactions.receive(payload, request.headers["X-Slack-Signature"])
    if outcome in ("replayed", "refused"):
        # A replay is not Slack's: it never resends an interaction.
        status = 401 if outcome == "replayed" else 403
        return jsonify(error=outcome, detail="The press was not accepted."), status
    return jsonify(ok=True, outcome=outcome)
