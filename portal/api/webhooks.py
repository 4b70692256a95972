"""``/api/v1/webhook-endpoints``: the organization's webhook endpoints, for the host SaaS.

The same service as the settings page (:mod:`portal.webhooks.endpoints`): the same checks (https,
no internal addresses, known event types), the same audit records. The signing secret is in the
answer to ``POST`` and to ``rotate-secret`` only.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_babel import force_locale

from .. import inbound
from ..extensions import db
from ..webhooks import endpoints
from ..webhooks.events import iso
from ..webhooks.models import WebhookEndpoint
from . import bp
from .views import MAX_BODY_BYTES, ApiError, _organization, _payload

FIELDS = frozenset({"url", "description", "event_types", "include_content", "enabled"})


def _represent(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
        "include_content": endpoint.include_content,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_valid_until": iso(endpoint.previous_secret_until),
        "created_at": iso(endpoint.created_at),
    }


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoints.get(_organization(), endpoint_id)
    if endpoint is None:
        raise ApiError(404, "not_found", "No such webhook endpoint in this organization.")
    return endpoint


def _fields(data: dict[str, Any], current: WebhookEndpoint | None = None) -> endpoints.Fields:
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ApiError(400, "invalid_field", f"Unknown field(s): {', '.join(unknown)[:200]}.")

    try:
        with force_locale("en"):  # the API speaks English, like its other errors
            return endpoints.validate(
                data.get("url", current.url if current else None),
                data.get("description", current.description if current else ""),
                data.get("event_types", list(current.event_types or []) if current else None),
                data.get("include_content", current.include_content if current else False),
            )
    except endpoints.EndpointError as problem:
        raise ApiError(400, "invalid_field", f"'{problem.field}': {problem.message}") from None


@bp.get("/webhook-endpoints")
def list_webhook_endpoints() -> Response:
    return jsonify(endpoints=[_represent(e) for e in endpoints.for_organization(_organization())])


@bp.post("/webhook-endpoints")
@inbound.json_endpoint(limit=MAX_BODY_BYTES)
def create_webhook_endpoint() -> tuple[Response, int]:
    """201 with the endpoint and its ``secret`` (shown this once)."""
    data = _payload()
    if "enabled" in data:
        raise ApiError(400, "invalid_field", "A new endpoint is always enabled.")
    fields = _fields(data)
    try:
        with force_locale("en"):
            endpoint, secret = endpoints.create(_organization(), None, fields)
    except endpoints.EndpointError as problem:
        db.session.rollback()
        raise ApiError(409, "too_many_endpoints", problem.message) from None
    return jsonify({**_represent(endpoint), "secret": secret}), 201


@bp.get("/webhook-endpoints/<int:endpoint_id>")
def get_webhook_endpoint(endpoint_id: int) -> Response:
    return jsonify(_represent(_endpoint(endpoint_id)))


@bp.patch("/webhook-endpoints/<int:endpoint_id>")
@inbound.json_endpoint(limit=MAX_BODY_BYTES)
def update_webhook_endpoint(endpoint_id: int) -> Response:
    endpoint = _endpoint(endpoint_id)
    data = _payload()
    enabled = data.get("enabled", endpoint.enabled)
    if not isinstance(enabled, bool):
        raise ApiError(400, "invalid_field", "'enabled' must be true or false.")
    fields = _fields(data, endpoint)
    endpoints.update(endpoint, None, fields)
    endpoints.set_enabled(endpoint, None, enabled)
    return jsonify(_represent(endpoint))


@bp.delete("/webhook-endpoints/<int:endpoint_id>")
def delete_webhook_endpoint(endpoint_id: int) -> tuple[str, int]:
    endpoints.delete(_endpoint(endpoint_id), None)
    return "", 204


@bp.post("/webhook-endpoints/<int:endpoint_id>/rotate-secret")
def rotate_webhook_secret(endpoint_id: int) -> Response:
    """The new secret; the previous one keeps signing until ``previous_secret_valid_until``."""
    endpoint = _endpoint(endpoint_id)
    secret = endpoints.rotate(endpoint, None)
    return jsonify({**_represent(endpoint), "secret": secret})


@bp.post("/webhook-endpoints/<int:endpoint_id>/test")
def test_webhook_endpoint(endpoint_id: int) -> tuple[Response, int]:
    """202: a ``webhook.test`` event is queued for this endpoint alone."""
    event = endpoints.send_test(_endpoint(endpoint_id), None)
    return jsonify({"webhook_id": event.message_id, "type": event.type}), 202
