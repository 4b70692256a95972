"""Creating notifications: routing to a channel and writing the outbox in the caller's transaction.

A route names a channel of ``channels.transports``: the member's linked chat tool, else the
default channel (e-mail), which reaches everyone.

A notification and its deliveries are added to the current session; the caller commits (the
API request, a service), then calls :func:`wake` so a worker picks them up at once. If the
transaction rolls back, nothing was ever queued (DL-01).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)
from ..integrations.registry import providers
from .jobs import deliver_now
from .models import Delivery, DeliveryState, Notification
from .transports import transports

#: ``User.channel_preference`` values (None is the default routing, like "chat"): only the
#: default channel, or a chat DM and the default channel both.
PREFER_EMAIL = "email"
PREFER_BOTH = "both"
#: Reason of a chat delivery held until the member confirms an automatic link (state skipped).
HELD_REASON = "held_unconfirmed"


@dataclass(frozen=True)
class Route:
    #: A key of ``channels.transports``.
    channel: str
    reason: str
    integration_id: int | None = None
    chat_account_id: int | None = None
    #: The member chose "both": an e-mail (default channel) delivery goes out next to the chat one.
    also_email: bool = False
    #: The chat link was matched automatically and the member has not confirmed it yet.
    unconfirmed: bool = False


#: Link methods the member did not make themselves: sensitive content waits for confirmation.
AUTO_METHODS = (LinkMethod.EMAIL, LinkMethod.SUGGESTION)


def route(recipient: User) -> Route:
    """Where ``recipient``'s notifications go: their linked chat account, else the default
    channel (e-mail). Linked on several chat tools, the first in provider order gets the DM.

    A member's channel choice (``User.channel_preference``: chat, email, both) is honoured
    when their organization allows members to choose.
    """
    organization = db.session.get(Organization, recipient.organization_id)
    preference = (
        recipient.channel_preference
        if organization is not None and organization.allow_channel_choice
        else None
    )
    if preference == PREFER_EMAIL:
        return Route(transports.default.key, "member_preference")
    rows = db.session.execute(
        select(AccountLink, Integration)
        .join(Integration, Integration.id == AccountLink.integration_id)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(
            AccountLink.user_id == recipient.id,
            AccountLink.organization_id == recipient.organization_id,
            AccountLink.flagged_reason.is_(None),
            ChatAccount.is_active.is_(True),
        )
    ).all()
    order = providers.keys()
    usable = [
        (link, integration)
        for link, integration in rows
        if integration.state is IntegrationState.CONNECTED and integration.provider in order
    ]
    if not usable:
        return Route(transports.default.key, "integration_unavailable" if rows else "not_linked")
    link, integration = min(usable, key=lambda pair: order.index(pair[1].provider))
    return Route(
        integration.provider,
        "linked",
        integration.id,
        link.chat_account_id,
        also_email=preference == PREFER_BOTH,
        unconfirmed=link.method in AUTO_METHODS and link.confirmed_at is None,
    )


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
) -> tuple[Notification, bool]:
    """Add a notification and its delivery to the session; return it and whether it is new.

    The same ``idempotency_key`` twice returns the first notification and adds nothing
    (DL-02), also when two requests race: the database's unique constraint decides.
    ``pinned`` replaces the recipient's usual :func:`route` (an admin testing one chat tool).
    """
    if idempotency_key:
        existing = _find_by_key(organization, idempotency_key)
        if existing:
            return existing, False
    chosen = pinned or route(recipient)
    notification = Notification(
        organization_id=organization.id,
        recipient_id=recipient.id,
        title=title,
        body=body,
        url=url,
        idempotency_key=idempotency_key,
        sensitive=sensitive,
    )
    # Sensitive content waits until the member confirms an automatic match (HELD_REASON).
    held = sensitive and chosen.unconfirmed and organization.hold_sensitive_until_confirmed
    delivery = Delivery(
        organization_id=organization.id,
        channel=chosen.channel,
        integration_id=chosen.integration_id,
        chat_account_id=chosen.chat_account_id,
        state=DeliveryState.SKIPPED if held else DeliveryState.PENDING,
        reason=HELD_REASON if held else (reason or chosen.reason),
        next_attempt_at=utcnow(),
    )
    notification.deliveries.append(delivery)
    if chosen.also_email:
        notification.deliveries.append(
            Delivery(
                organization_id=organization.id,
                channel=transports.default.key,
                state=DeliveryState.PENDING,
                reason="member_preference",
                next_attempt_at=utcnow(),
            )
        )
    db.session.add(notification)
    if not idempotency_key:
        return notification, True
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
    return notification, True


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
    if delivery.state not in (DeliveryState.DEAD, DeliveryState.FAILED):
        raise ValueError("only dead or failed deliveries can be replayed")
    before = {"state": delivery.state.value, "attempts": delivery.attempts}
    delivery.state = DeliveryState.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.locked_by = None
    delivery.locked_until = None
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
