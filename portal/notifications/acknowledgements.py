"""「確認しました」: a member acknowledges a notification the host asked them to confirm.

:func:`acknowledge` is a service: it owns its transaction, and the audit event and the
``notification.acknowledged`` webhook event are committed with the acknowledgement itself, so
a press that did not count never announces itself. It is idempotent: the first press is
recorded, later ones (a double click, Slack's retry, a second device) change nothing.
"""

from __future__ import annotations

from typing import Literal

from flask_babel import lazy_gettext as _l
from sqlalchemy import update

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..audit.events import register
from ..database import utcnow
from ..extensions import db
from ..webhooks import events
from .models import Notification

register("notification.acknowledged", "positive", _l("Member acknowledged a notification"))

Outcome = Literal["acknowledged", "already"]


class NotTheRecipient(PermissionError):
    """Only the member a notification was sent to may acknowledge it."""


class NotRequested(ValueError):
    """The host did not ask for an acknowledgement of this notification."""


def acknowledge(notification: Notification, member: User, channel: str | None) -> Outcome:
    """Record that ``member`` acknowledged ``notification`` on ``channel`` (a provider key, or
    "portal"); commits. "already" when it was acknowledged before: nothing changes then.

    Raises :class:`NotTheRecipient` for anyone but the recipient (even of the same
    organization) and :class:`NotRequested` when no acknowledgement was asked for.
    """
    if (
        member.id != notification.recipient_id
        or member.organization_id != notification.organization_id
    ):
        raise NotTheRecipient(member.id)
    if not notification.ack_requested:
        raise NotRequested(notification.id)
    now = utcnow()
    # A conditional update decides between two presses racing each other: one row changes.
    changed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification.id, Notification.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=member.id)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        db.session.refresh(notification)  # the first press's who and when
        return "already"
    notification.acknowledged_at, notification.acknowledged_by_id = now, member.id
    audit.record(
        "notification.acknowledged",
        organization=db.session.get(Organization, notification.organization_id),
        actor=member,
        target=("notification", notification.id, notification.title[:100]),
        data={"channel": channel},
    )
    events.emit(
        notification.organization_id,
        "notification.acknowledged",
        {
            "notification_id": notification.id,
            "recipient_id": notification.recipient_id,
            "idempotency_key": notification.idempotency_key,
            "acknowledged_at": now.isoformat().replace("+00:00", "Z"),
            "channel": channel,
        },
        now=now,
    )
    db.session.commit()
    return "acknowledged"
