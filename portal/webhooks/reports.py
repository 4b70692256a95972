"""What each change tells the endpoints: the ``data`` of notification, link and integration
events, built from the rows the change touched. The services and the dispatcher call these
inside the transaction that makes the change (see :func:`.events.emit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..extensions import db
from ..integrations.models import ChatAccount, Integration, LinkMethod
from ..notifications.models import Delivery, Notification
from ..preferences.models import NotificationCategory
from .events import emit, iso


def _notification_data(notification: Notification, delivery: Delivery) -> dict[str, Any]:
    category = (
        db.session.get(NotificationCategory, notification.category_id)
        if notification.category_id
        else None
    )
    return {
        "notification_id": notification.id,
        "delivery_id": delivery.id,
        "recipient_id": notification.recipient_id,
        "idempotency_key": notification.idempotency_key,
        "category": category.key if category else None,
        "channel": delivery.channel,
        "state": delivery.state.value,
        "reason": delivery.last_error_code or delivery.reason,
        "attempts": delivery.attempts,
        "created_at": iso(notification.created_at),
    }


def notification_event(
    type_: str,
    delivery: Delivery,
    notification: Notification | None = None,
    **extra: Any,
) -> None:
    """Report ``type_`` ("notification.delivered", …) about one delivery of a notification."""

    def data() -> dict[str, Any]:
        found = notification or db.session.get(Notification, delivery.notification_id)
        assert found is not None
        values = _notification_data(found, delivery)
        values.update({k: iso(v) if isinstance(v, datetime) else v for k, v in extra.items()})
        return values

    def content() -> dict[str, Any]:
        found = notification or db.session.get(Notification, delivery.notification_id)
        assert found is not None
        return {"title": found.title, "body": found.body, "url": found.url}

    emit(delivery.organization_id, type_, data, content=content)


def link_event(
    type_: str,
    integration: Integration,
    *,
    user_id: int,
    account: ChatAccount | None,
    method: LinkMethod | None,
    link_id: int | None = None,
) -> None:
    """Report ``type_`` ("link.created", …) about one member's link in ``integration``."""
    emit(
        integration.organization_id,
        type_,
        lambda: {
            "link_id": link_id,
            "user_id": user_id,
            "provider": integration.provider,
            "external_user_id": account.external_id if account else "",
            "method": method.value if method else None,
        },
    )


def integration_event(type_: str, integration: Integration, reason: str | None = None) -> None:
    """Report ``type_`` ("integration.connected", …) about ``integration``."""
    emit(
        integration.organization_id,
        type_,
        lambda: {
            "integration_id": integration.id,
            "provider": integration.provider,
            "state": integration.state.value,
            "reason": reason,
        },
    )
