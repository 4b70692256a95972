"""Creating notifications: routing to a channel and writing the outbox in the caller's transaction.

A route names a channel of ``channels.transports``: the member's linked chat tool, else the
default channel (e-mail), which reaches everyone.

A notification and its deliveries are added to the current session; the caller commits (the
API request, a service), then calls :func:`wake` so a worker picks them up at once. If the
transaction rolls back, nothing was ever queued (DL-01).
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..preferences import categories, hours
from ..preferences.models import NotificationCategory
from ..webhooks import events as webhook_events
from ..webhooks import reports
from .dispatcher import OUTBOX
from .jobs import deliver_now
from .models import Delivery, DeliveryState, Notification
from .routing import Route, route
from .transports import transports

#: Reason of a chat delivery held until the member confirms an automatic link (state skipped).
HELD_REASON = "held_unconfirmed"
#: Skipped deliveries that wait for something (the others are off for good).
HELD_REASONS = frozenset({HELD_REASON, hours.DIGEST_PENDING})
#: Why routing passed over the member's chat tool for e-mail (see ``routing``).
NOT_LINKED_REASONS = frozenset({"not_linked", "integration_unavailable"})


def create_notification(
    organization: Organization,
    recipient: User,
    *,
    title: str,
    body: str,
    url: str | None = None,
    idempotency_key: str | None = None,
    sensitive: bool = False,
    reason: str | None = None,
    pinned: Route | None = None,
    category: NotificationCategory | None = None,
    urgent: bool = False,
    bundle: bool = False,
    ack_requested: bool = False,
) -> tuple[Notification, bool]:
    """Add a notification and its delivery to the session; return it and whether it is new.

    The same ``idempotency_key`` twice returns the first notification and adds nothing
    (DL-02), also when two requests race: the database's unique constraint decides.
    ``pinned`` replaces the recipient's usual :func:`routing.route` (an admin testing one
    chat tool); ``category`` is the organization's default one when None.
    """
    if idempotency_key:
        existing = _find_by_key(organization, idempotency_key)
        if existing:
            return existing, False
    category = category or categories.default(organization)
    chosen = pinned or route(recipient, category)
    now = utcnow()
    # Routed (not pinned), not urgent and not off: it may wait. A digest category waits for its
    # digest (skipped, due at the digest time); else, outside the member's working hours, the
    # delivery is due when they begin: the worker's sweep sends it then, paced like any other.
    waits = not (pinned or chosen.off or urgent or bundle)
    digest_at: datetime | None = None
    held_until: datetime | None = None
    if waits and (schedule := hours.schedule_for(recipient, organization, category)):
        digest_at = schedule.next_at(now)
    elif waits:
        held_until = hours.hold_until(recipient, organization, now, urgent=False)
    notification = Notification(
        organization_id=organization.id,
        recipient_id=recipient.id,
        title=title,
        body=body,
        url=url,
        idempotency_key=idempotency_key,
        sensitive=sensitive,
        category_id=category.id,
        urgent=urgent,
        ack_requested=ack_requested,
    )
    # Sensitive content waits until the member confirms an automatic match (HELD_REASON).
    held = sensitive and chosen.unconfirmed and organization.hold_sensitive_until_confirmed
    delivery = Delivery(
        organization_id=organization.id,
        channel=chosen.channel,
        integration_id=chosen.integration_id,
        chat_account_id=chosen.chat_account_id,
        # Off for this member: nothing goes out, and the skipped row tells the log why.
        state=DeliveryState.SKIPPED if held or chosen.off or digest_at else DeliveryState.PENDING,
        reason=_reason(held, digest_at, held_until) or reason or chosen.reason,
        next_attempt_at=digest_at or held_until or now,
    )
    notification.deliveries.append(delivery)
    if chosen.also_email and not digest_at:  # a digest carries both channels itself
        notification.deliveries.append(
            Delivery(
                organization_id=organization.id,
                channel=transports.default.key,
                state=DeliveryState.PENDING,
                reason=hours.HELD_QUIET_HOURS if held_until else chosen.also_email_reason,
                next_attempt_at=held_until or now,
            )
        )
    db.session.add(notification)
    if idempotency_key:
        try:
            db.session.flush()
        except IntegrityError:
            # A concurrent request with the same key won. SQLite's driver cannot roll back to a
            # savepoint reliably, so the caller's transaction is rolled back as a whole: callers
            # passing an idempotency key must not have other pending changes they need.
            db.session.rollback()
            existing = _find_by_key(organization, idempotency_key)
            if existing is None:
                raise
            return existing, False
    _report_waiting(organization, notification)
    return notification, True


def _report_waiting(organization: Organization, notification: Notification) -> None:
    """Tell the webhook endpoints which deliveries wait (held) or will not go (skipped)."""
    for delivery in notification.deliveries:
        if delivery.state is DeliveryState.SKIPPED and delivery.reason in HELD_REASONS:
            found: tuple[str, dict[str, object]] | None = (
                "notification.held",
                {"until": None if delivery.reason == HELD_REASON else delivery.next_attempt_at},
            )
        elif delivery.state is DeliveryState.SKIPPED:
            found = ("notification.skipped", {})
        elif delivery.reason == hours.HELD_QUIET_HOURS:
            found = ("notification.held", {"until": delivery.next_attempt_at})
        elif delivery.reason in NOT_LINKED_REASONS:
            # The chat tool was passed over: the e-mail delivery says why.
            found = ("notification.skipped", {"channel": "chat", "state": "skipped"})
        else:
            found = None
        if found and webhook_events.listening(organization.id, found[0]):
            db.session.flush()  # the event names the notification's and delivery's ids
            reports.notification_event(found[0], delivery, notification, **found[1])


def _reason(held: bool, digest_at: datetime | None, held_until: datetime | None) -> str | None:
    """Why a delivery waits, if it does."""
    if held:
        return HELD_REASON
    if digest_at:
        return hours.DIGEST_PENDING
    return hours.HELD_QUIET_HOURS if held_until else None


def _find_by_key(organization: Organization, key: str) -> Notification | None:
    return db.session.scalar(
        select(Notification).where(
            Notification.organization_id == organization.id, Notification.idempotency_key == key
        )
    )


def wake(deliveries: list[Delivery] | list[int]) -> None:
    """Ask a worker to send these deliveries now (call after commit; the sweep is the backstop)."""
    if not current_app.config.get("DELIVERY_AUTOWAKE", True):
        return
    ids = [d if isinstance(d, int) else d.id for d in deliveries]
    if ids:
        deliver_now(ids)


def send_test_message(recipient: User, *, actor: User, pinned: Route | None = None) -> Notification:
    """Send ``recipient`` a test notification through exactly the real pipeline; commits.

    ``pinned`` sends it on that route rather than the member's usual one (see
    ``integrations.linking.send_test_message``).
    """
    organization = db.session.get(Organization, recipient.organization_id)
    assert organization is not None
    with force_locale(recipient.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        title = _("Test message from Chat Connect")
        body = _(
            "%(admin)s sent this test message. If you can read it, your notifications reach"
            " you here.",
            admin=actor.name,
        )
    notification, _created = create_notification(
        organization, recipient, title=title, body=body, reason=None, pinned=pinned
    )
    audit.record(
        "notification.test_sent",
        organization=organization,
        actor=actor,
        target=("user", recipient.id, recipient.email),
        data={"channel": notification.deliveries[0].channel},
    )
    db.session.commit()
    wake(notification.deliveries)
    return notification


def replay(delivery: Delivery, *, actor: User) -> Delivery:
    """Send a dead or failed delivery again: the same row, so nothing already sent repeats."""
    before = OUTBOX.rearm(delivery)
    organization = db.session.get(Organization, delivery.organization_id)
    audit.record(
        "delivery.replayed",
        organization=organization,
        actor=actor,
        target=("delivery", delivery.id, delivery.channel),
        before=before,
        after={"state": "pending"},
    )
    db.session.commit()
    wake([delivery.id])
    return delivery
