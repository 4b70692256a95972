"""The events an endpoint can subscribe to, and :func:`emit`, which queues one.

:func:`emit` adds the event and one outbox row per subscribed, enabled endpoint to the current
session: the caller commits them with the change they report, so a rolled-back change never
announces itself and a committed one always does. Payloads are thin — ids, states, reasons,
timestamps — as the Standard Webhooks spec advises; a notification's title and body travel
only to endpoints that opted in (``include_content``), see :func:`body_for`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..database import utcnow
from ..extensions import db
from .models import WebhookDelivery, WebhookEndpoint, WebhookEvent

#: The key under ``data`` that carries message content, for endpoints that opted in.
CONTENT = "content"


@dataclass(frozen=True)
class EventType:
    key: str
    label: LazyString
    #: The ``data`` fields, name → JSON Schema (the OpenAPI ``webhooks`` section is built from it).
    fields: dict[str, dict[str, Any]]


Schema = dict[str, Any]

_ID: Schema = {"type": "integer"}
_TEXT: Schema = {"type": "string"}
_NULLABLE_TEXT: Schema = {"type": ["string", "null"]}
_TIME: Schema = {"type": "string", "format": "date-time"}
_NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}

_NOTIFICATION: dict[str, Schema] = {
    "notification_id": _ID,
    "delivery_id": _ID,
    "recipient_id": _ID,
    "idempotency_key": _NULLABLE_TEXT,
    "category": _NULLABLE_TEXT,
    "channel": _TEXT,
    "state": _TEXT,
    "reason": _NULLABLE_TEXT,
    "attempts": _ID,
    "created_at": _TIME,
}
_LINK: dict[str, Schema] = {
    "link_id": {"type": ["integer", "null"]},
    "user_id": _ID,
    "provider": _TEXT,
    "external_user_id": _TEXT,
    "method": _NULLABLE_TEXT,
}
_INTEGRATION: dict[str, Schema] = {
    "integration_id": _ID,
    "provider": _TEXT,
    "state": _TEXT,
    "reason": _NULLABLE_TEXT,
}

TYPES: dict[str, EventType] = {
    t.key: t
    for t in (
        EventType(
            "notification.delivered",
            _l("A notification was delivered"),
            {**_NOTIFICATION, "sent_at": _TIME},
        ),
        EventType(
            "notification.failed",
            _l("A notification could not be delivered (no retry)"),
            _NOTIFICATION,
        ),
        EventType(
            "notification.skipped", _l("A notification was not sent on a channel"), _NOTIFICATION
        ),
        EventType(
            "notification.held",
            _l("A notification is held (quiet hours, digest, unconfirmed link)"),
            {**_NOTIFICATION, "until": _NULLABLE_TIME},
        ),
        EventType("notification.released", _l("A held notification was released"), _NOTIFICATION),
        EventType("notification.dead", _l("A notification's retries ran out"), _NOTIFICATION),
        EventType(
            "notification.acknowledged",
            _l("A member acknowledged a notification"),
            {
                "notification_id": _ID,
                "recipient_id": _ID,
                "idempotency_key": _NULLABLE_TEXT,
                "acknowledged_at": _TIME,
                "channel": _NULLABLE_TEXT,
            },
        ),
        EventType("link.created", _l("A chat account was linked"), _LINK),
        EventType("link.removed", _l("A chat account was unlinked"), _LINK),
        EventType("link.confirmed", _l("A member confirmed their chat account"), _LINK),
        EventType("link.disowned", _l("A member said a chat account is not theirs"), _LINK),
        EventType("integration.connected", _l("A chat tool was connected"), _INTEGRATION),
        EventType("integration.disconnected", _l("A chat tool was disconnected"), _INTEGRATION),
        EventType(
            "integration.needs_reconnect", _l("A chat tool needs reconnecting"), _INTEGRATION
        ),
    )
}

#: Sent by "send a test event"; not subscribable (every endpoint receives its own test).
TEST = "webhook.test"


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def emit(
    organization_id: int,
    type_: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    content: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> WebhookEvent | None:
    """Queue ``type_`` for every enabled endpoint of the organization that subscribes to it;
    return the event, or None when nobody listens (then nothing is written).

    Adds to the session without committing: the caller's transaction carries it. ``data`` and
    ``content`` may be callables, run only when someone listens (the dispatcher's hot path).
    """
    if type_ not in TYPES:
        raise KeyError(f"unregistered webhook event {type_!r}")
    endpoints = [e for e in _enabled(organization_id) if type_ in (e.event_types or ())]
    if not endpoints:
        return None
    if callable(data):
        data = data()
    if callable(content):
        content = content()
    return _queue(organization_id, type_, data, endpoints, content=content, now=now)


def listening(organization_id: int, type_: str) -> bool:
    """Whether an enabled endpoint of the organization subscribes to ``type_``."""
    return any(type_ in (e.event_types or ()) for e in _enabled(organization_id))


def _enabled(organization_id: int) -> list[WebhookEndpoint]:
    """The organization's enabled endpoints, read once per transaction: a bulk change (10,000
    members linked by e-mail) emits one event per row without one query per row."""
    cache: dict[int, list[WebhookEndpoint]] = db.session.info.setdefault(_CACHE, {})
    if organization_id not in cache:
        cache[organization_id] = list(
            db.session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.organization_id == organization_id,
                    WebhookEndpoint.enabled.is_(True),
                )
            )
        )
    return cache[organization_id]


_CACHE = "webhook_endpoints"
#: Set on a session that queued a delivery: its commit wakes a sender.
_QUEUED = "webhooks_queued"
#: How a commit that queued events asks for a send pass; set by :mod:`.sender` (which imports
#: this module) through :func:`wake_with`. Without one, the worker's sweep finds the rows.
_waker: Callable[[], None] | None = None


def wake_with(waker: Callable[[], None]) -> None:
    global _waker
    _waker = waker


@sa_event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_CACHE, None)
    if session.info.pop(_QUEUED, False) and _waker is not None:
        _waker()


@sa_event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_CACHE, None)
    session.info.pop(_QUEUED, None)


def emit_test(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> WebhookEvent:
    """Queue a ``webhook.test`` event for ``endpoint`` alone (enabled or not)."""
    return _queue(
        endpoint.organization_id,
        TEST,
        {"endpoint_id": endpoint.id, "message": "Chat Connect test event"},
        [endpoint],
        now=now,
    )


def _queue(
    organization_id: int,
    type_: str,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint],
    *,
    content: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WebhookEvent:
    now = now or utcnow()
    full = dict(data)
    if content is not None and any(e.include_content for e in endpoints):
        full[CONTENT] = content
    event = WebhookEvent(
        organization_id=organization_id,
        message_id=new_message_id(),
        type=type_,
        payload={"type": type_, "timestamp": iso(now), "data": full},
        created_at=now,
    )
    db.session.add(event)
    db.session.info[_QUEUED] = True
    for endpoint in endpoints:
        db.session.add(
            WebhookDelivery(
                event=event,
                endpoint_id=endpoint.id,
                organization_id=organization_id,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return event


def body_for(event: WebhookEvent, endpoint: WebhookEndpoint) -> str:
    """The exact bytes signed and sent to ``endpoint`` (the same on every retry)."""
    payload = event.payload
    if CONTENT in payload.get("data", {}) and not endpoint.include_content:
        payload = {**payload, "data": {k: v for k, v in payload["data"].items() if k != CONTENT}}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
