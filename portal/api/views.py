"""``POST /api/v1/notifications``, ``GET /api/v1/notifications/<id>``, the OpenAPI description.

Errors are JSON ``{error, detail}`` with the right status: 400 malformed JSON or fields,
401 missing/unknown key, 403 revoked key, 404 unknown notification, 413 body too large,
415 not JSON, 422 unknown recipient, 429 rate limit (with ``Retry-After``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Response, g, jsonify, request
from flask_babel import force_locale
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from .. import inbound, text
from ..accounts.models import Organization, User
from ..converters import ID_MAX
from ..database import utcnow
from ..extensions import db
from ..integrations.providers.base import PacingBudget
from ..notifications import api_keys, pacing, services
from ..notifications.models import Notification
from ..preferences import categories
from ..preferences.models import CHANNEL_KINDS, NotificationCategory
from . import bp
from .openapi import spec

MAX_BODY_BYTES = 64 * 1024
LIMITS = {"title": 300, "body": 10_000, "url": 2000, "idempotency_key": 200, "recipient_email": 254}
#: Fields that may hold several lines (newline and tab); every other field is one line.
MULTILINE = frozenset({"body"})
#: Per API key: 20 requests a second sustained, bursts of 100.
RATE = 20.0
BURST = 100


class ApiError(HTTPException):
    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.error = error
        self.extra_headers = headers or {}
        #: More fields of the error body (e.g. the known categories).
        self.extra = extra or {}

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        response = jsonify(error=self.error, detail=self.description, **self.extra)
        response.status_code = self.code or 400
        response.headers.update(self.extra_headers)
        return response


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException) -> Response:
    if isinstance(error, ApiError):
        return error.get_response()
    if error.code == 413:  # raised by the body stream as it counts the bytes read
        return _too_large().get_response()
    response = jsonify(error=f"http_{error.code}", detail=error.description)
    response.status_code = error.code or 500
    return response


@bp.before_request
def authenticate() -> None:
    if request.endpoint == "api.openapi":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "missing_api_key",
            "Send the organization's API key as 'Authorization: Bearer <key>'.",
            {"WWW-Authenticate": "Bearer"},
        )
    row = api_keys.authenticate(key.strip())
    if row is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "This API key is not known.",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if row.revoked_at is not None:
        raise ApiError(
            403, "revoked_api_key", "This API key was revoked. Create a new one in the portal."
        )
    wait = pacing.take(PacingBudget(f"api:{row.id}", RATE, BURST))
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests for this API key.",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    row.last_used_at = utcnow()
    g.api_organization = db.session.get(Organization, row.organization_id)


def _organization() -> Organization:
    return g.api_organization  # type: ignore[no-any-return]


def _too_large() -> ApiError:
    return ApiError(
        413, "body_too_large", f"The request body is limited to {MAX_BODY_BYTES} bytes."
    )


def _payload() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send JSON with 'Content-Type: application/json'."
        )
    try:
        data = inbound.read_json()  # counted as read: a chunked body stops at the limit too
    except inbound.MalformedBody as problem:
        raise ApiError(400, "malformed_json", problem.detail) from None
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object.")
    return data


def _string(data: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ApiError(400, "invalid_field", f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"'{name}' must be a string.")
    try:
        value = (text.multiline if name in MULTILINE else text.one_line)(value.strip())
    except text.BadText as problem:
        raise ApiError(400, "invalid_field", f"'{name}' {problem}.") from None
    if required and not value:
        raise ApiError(400, "invalid_field", f"'{name}' must not be empty.")
    if len(value) > LIMITS[name]:
        raise ApiError(400, "invalid_field", f"'{name}' is longer than {LIMITS[name]} characters.")
    return value


def _recipient(data: dict[str, Any], organization: Organization) -> User:
    email, user_id = data.get("recipient_email"), data.get("user_id")
    if (email is None) == (user_id is None):
        raise ApiError(400, "invalid_field", "Give exactly one of 'recipient_email' and 'user_id'.")
    stmt = select(User).where(
        User.organization_id == organization.id, User.is_active_flag.is_(True)
    )
    if email is not None:
        address = _string(data, "recipient_email", required=True) or ""
        user = db.session.scalar(stmt.where(User.email == address.lower()))
    else:
        if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id < 1:
            raise ApiError(400, "invalid_field", "'user_id' must be a positive integer.")
        # Past the id column's range no member can match (and the database would refuse it).
        user = db.session.scalar(stmt.where(User.id == user_id)) if user_id <= ID_MAX else None
    if user is None:
        raise ApiError(
            422, "unknown_recipient", "No active member of this organization matches the recipient."
        )
    return user


def _url(data: dict[str, Any]) -> str | None:
    url = _string(data, "url")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("https", "http") and bool(parts.hostname) and " " not in url
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid:
        raise ApiError(400, "invalid_field", "'url' must be an http(s) URL.")
    return url


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, "invalid_field", f"'{name}' must be true or false.")
    return value


def _category(data: dict[str, Any], organization: Organization) -> NotificationCategory:
    """The category ``data`` names (the default one when absent); unknown → 422 with the
    known keys, so the caller can fix the request."""
    key = data.get("category")
    if key is None:
        return categories.default(organization)
    if not isinstance(key, str):
        raise ApiError(400, "invalid_field", "'category' must be a string.")
    found = categories.find(organization, key) if len(key) <= 40 else None
    if found is None:
        known = [c.key for c in categories.all_for(organization)]
        raise ApiError(
            422,
            "unknown_category",
            f"No category has this key. Known: {', '.join(known)}.",
            extra={"known_categories": known},
        )
    return found


def _category_key(notification: Notification) -> str:
    category = (
        db.session.get(NotificationCategory, notification.category_id)
        if notification.category_id
        else None
    )
    return category.key if category else categories.DEFAULT_KEY


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _represent(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "created_at": notification.created_at.isoformat(),
        "idempotency_key": notification.idempotency_key,
        "category": _category_key(notification),
        "urgent": notification.urgent,
        "ack_requested": notification.ack_requested,
        "acknowledged_at": _iso(notification.acknowledged_at),
        "deliveries": [
            {
                "channel": d.channel,
                "state": d.state.value,
                "reason": d.reason,
                "attempts": d.attempts,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "provider_message_id": d.provider_message_id,
                "last_error": d.last_error_code,
            }
            for d in notification.deliveries
        ],
    }


@bp.post("/notifications")
@inbound.json_endpoint(limit=MAX_BODY_BYTES)
def create_notification() -> tuple[Response, int]:
    """Queue a notification for one member; 202 with its deliveries."""
    organization = _organization()
    data = _payload()
    recipient = _recipient(data, organization)
    title = _string(data, "title", required=True) or ""
    body = _string(data, "body", required=True) or ""
    sensitive = _flag(data, "sensitive")
    urgent = _flag(data, "urgent")
    ack_requested = _flag(data, "ack_requested")
    category = _category(data, organization)
    notification, created = services.create_notification(
        organization,
        recipient,
        title=title,
        body=body,
        url=_url(data),
        idempotency_key=_string(data, "idempotency_key"),
        sensitive=sensitive,
        category=category,
        urgent=urgent,
        ack_requested=ack_requested,
    )
    db.session.commit()
    if created:
        services.wake(notification.deliveries)
    return jsonify(_represent(notification)), 202


@bp.get("/notifications/<int:notification_id>")
def get_notification(notification_id: int) -> Response:
    """A notification of this key's organization, with the state of each delivery."""
    notification = db.session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.organization_id == _organization().id
        )
    )
    if notification is None:
        raise ApiError(404, "not_found", "No such notification in this organization.")
    return jsonify(_represent(notification))


def _represent_category(category: NotificationCategory) -> dict[str, Any]:
    return {
        "key": category.key,
        "label_ja": category.label_ja,
        "label_en": category.label_en,
        "description": category.description,
        "defaults": {kind: category.default(kind) for kind in CHANNEL_KINDS},
        "locked": {kind: category.locked(kind) for kind in CHANNEL_KINDS},
    }


@bp.get("/categories")
def list_categories() -> Response:
    """The organization's notification categories with their defaults and locks."""
    return jsonify(categories=[_represent_category(c) for c in categories.all_for(_organization())])


@bp.post("/categories")
@inbound.json_endpoint(limit=MAX_BODY_BYTES)
def create_category() -> tuple[Response, int]:
    """Add a category (sent by chat by default, unlocked: admins set the rest in the portal);
    201, or 409 when the key exists, 400 for a bad key or name."""
    organization = _organization()
    data = _payload()
    try:
        with force_locale("en"):  # the API speaks English, like its other errors
            category = categories.create(
                organization,
                actor=None,
                key=data.get("key"),
                label_ja=data.get("label_ja"),
                label_en=data.get("label_en"),
                description=data.get("description", ""),
            )
    except categories.CategoryError as problem:
        db.session.rollback()
        key = data.get("key")
        exists = isinstance(key, str) and categories.find(organization, key) is not None
        raise ApiError(
            409 if exists else 400,
            "category_exists" if exists else "invalid_field",
            f"'{problem.field}': {problem.message}",
        ) from None
    return jsonify(_represent_category(category)), 201


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(spec())
