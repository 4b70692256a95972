"""Digests (issue 16 item 5): a category a member receives "daily at HH:MM" or "weekly on a
weekday" is held, and at that time its notifications become one notification listing each
title with its link — at most 20, then "and N more" pointing to the portal — routed like any
other (chat DM in the tool's markup, e-mail, both), in the member's language.

Exactly one digest per member, category and digest time, even if a worker is killed while
building them or two workers build at once: the digest and the marking of what it lists are
one transaction, and the digest's idempotency key (member, category, time) is unique.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from ..accounts.models import Organization, User
from ..database import utcnow
from ..extensions import db
from ..notifications import mail
from ..notifications.models import Delivery, DeliveryState, Notification
from ..notifications.services import create_notification, wake
from ..tasks import crontab, periodic_task, task
from ..webhooks import reports
from .hours import DIGEST_PENDING
from .models import NotificationCategory

log = logging.getLogger(__name__)

#: The reason prefix of a delivery listed in a digest ("digested:<digest id>").
DIGESTED = "digested:"
#: Titles a digest lists; the rest are counted, with a link to the portal.
SHOWN = 20


def _due_groups(now: datetime) -> list[tuple[int, int, int | None, datetime]]:
    """(organization, member, category, digest time) of every digest due by ``now``."""
    rows = db.session.execute(
        select(
            Notification.organization_id,
            Notification.recipient_id,
            Notification.category_id,
            Delivery.next_attempt_at,
        )
        .join(Delivery, Delivery.notification_id == Notification.id)
        .where(
            Delivery.state == DeliveryState.SKIPPED,
            Delivery.reason == DIGEST_PENDING,
            Delivery.next_attempt_at <= now,
        )
        .group_by(
            Notification.organization_id,
            Notification.recipient_id,
            Notification.category_id,
            Delivery.next_attempt_at,
        )
        .order_by(func.min(Notification.id))
    ).tuples()
    return list(rows)


def build_due(now: datetime | None = None) -> int:
    """Build every digest due by ``now``; returns how many were created (each committed on
    its own, so a kill mid-way keeps the finished ones and the next run does the rest)."""
    now = now or utcnow()
    built = 0
    for organization_id, user_id, category_id, due in _due_groups(now):
        try:
            built += _build_one(organization_id, user_id, category_id, due)
        except Exception:  # one member's failure must not stop the others' digests
            db.session.rollback()
            log.exception("digest for member %s, category %s not built", user_id, category_id)
    return built


def _build_one(organization_id: int, user_id: int, category_id: int | None, due: datetime) -> int:
    organization = db.session.get(Organization, organization_id)
    member = db.session.get(User, user_id)
    category = db.session.get(NotificationCategory, category_id) if category_id else None
    if organization is None or member is None or category is None:
        return 0
    items = list(
        db.session.execute(
            select(Notification, Delivery)
            .join(Delivery, Delivery.notification_id == Notification.id)
            .where(
                Notification.recipient_id == user_id,
                Notification.category_id == category_id,
                Delivery.state == DeliveryState.SKIPPED,
                Delivery.reason == DIGEST_PENDING,
                Delivery.next_attempt_at == due,
            )
            .order_by(Notification.id)
        ).tuples()
    )
    notifications = list({n.id: n for n, _d in items}.values())
    if not notifications:
        return 0
    title, body = _render(member, category, notifications)
    digest, created = create_notification(
        organization,
        member,
        title=title,
        body=body,
        url=mail.external_url("me.accounts") if len(notifications) > SHOWN else None,
        idempotency_key=f"digest:{category.key}:{due.isoformat()}:{member.id}",
        category=category,
        bundle=True,
    )
    if not created:  # another worker built it a moment ago, and marked the items with it
        db.session.rollback()
        return 0
    db.session.flush()
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_([d.id for _n, d in items]), Delivery.reason == DIGEST_PENDING)
        .values(reason=f"{DIGESTED}{digest.id}", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    for notification, delivery in items:
        reports.notification_event(
            "notification.released", delivery, notification, reason=f"{DIGESTED}{digest.id}"
        )
    db.session.commit()
    wake(digest.deliveries)
    return 1


def _render(
    member: User, category: NotificationCategory, notifications: list[Notification]
) -> tuple[str, str]:
    """The digest's title and body in the member's language: one line per notification
    ("・title" and its link), at most :data:`SHOWN`, then how many more."""
    locale = mail.locale_for(member)
    with force_locale(locale):
        title = str(
            _l(
                "%(category)s: %(count)s notifications",
                category=category.label(locale),
                count=len(notifications),
            )
        )
        lines = []
        for notification in notifications[:SHOWN]:
            lines.append(f"・{notification.title}")
            if notification.url:
                lines.append(f"  {notification.url}")
        more = len(notifications) - SHOWN
        if more > 0:
            lines.append(str(_l("…and %(count)s more: see them in Chat Connect.", count=more)))
    return title, "\n".join(lines)


@task()
def build_now() -> int:
    """Build whatever digests are due (the worker's sweep thread enqueues this)."""
    return build_due()


@periodic_task(crontab(minute="*"))
def build_every_minute() -> int:
    """The backstop: digests due while no worker ran are built on the next minute."""
    return build_due()
