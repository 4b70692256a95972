"""Link-change notices: the member hears about every link made or removed for them.

``linking.py`` calls :func:`link_created`, :func:`links_created`, :func:`link_removed` and
:func:`links_removed` after it commits. Each queues a background task that writes one
notification per member through the delivery pipeline: on the (new) chat channel and, always,
on the default channel (e-mail) — so someone who was linked to the wrong account still hears
about it. Automatic
matches (e-mail, suggestion) carry a signed link to the confirmation page; sensitive content
waits for it (``services.HELD_REASON``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import event, select

from ..accounts.models import Organization, User
from ..database import utcnow
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..notifications import mail
from ..notifications.models import Delivery, DeliveryState, Notification
from ..notifications.routing import AUTO_METHODS
from ..notifications.services import HELD_REASON, create_notification, wake
from ..notifications.transports import transports
from ..tasks import task

log = logging.getLogger(__name__)

#: How long a "confirm this account" link in a DM stays valid.
CONFIRM_MAX_AGE = 14 * 24 * 3600
CONFIRM_SALT = "link-confirm"
#: Members notified per transaction when thousands were linked at once.
BATCH = 200


# --- the hooks linking.py calls (after its commit) --------------------------------------------


def link_created(link: AccountLink) -> None:
    """A link was committed for one member: tell them (never breaks the caller)."""
    _enqueue(lambda: _notify_created(link.integration_id, [link.user_id]))


def links_created(integration: Integration, user_ids: list[int], *, committed: bool) -> None:
    """Links were made in bulk (e-mail auto-link); ``committed=False`` waits for the commit."""
    if not user_ids:
        return
    ids = list(user_ids)
    integration_id = integration.id
    if committed:
        _enqueue(lambda: _notify_created(integration_id, ids))
        return
    session = db.session()

    def after_commit(_session: Any) -> None:
        _enqueue(lambda: _notify_created(integration_id, ids))

    event.listen(session, "after_commit", after_commit, once=True)


def link_removed(integration: Integration, user: User, account: ChatAccount | None) -> None:
    """A member's link was removed (committed): tell them by e-mail, re-route held content."""
    name = account.name if account else ""
    account_id = account.id if account else None
    _enqueue(lambda: _notify_removed(integration.id, user.id, account_id, name))


def links_removed(integration: Integration, removed: list[tuple[int, int, str]]) -> None:
    """Links were removed in bulk (an undone auto-link batch), committed: ``removed`` holds
    (member id, account id, account name); each member is told as by :func:`link_removed`."""
    if not removed:
        return
    items = [[user_id, account_id, name] for user_id, account_id, name in removed]
    integration_id = integration.id
    _enqueue(lambda: _notify_removed_many(integration_id, items))


def _enqueue(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:  # a notice must never undo or break the link change itself
        log.exception("could not queue a link-change notice")


def _notify_created(integration_id: int, user_ids: list[int]) -> None:
    for start in range(0, len(user_ids), BATCH):
        notify_created_task(integration_id, user_ids[start : start + BATCH])


def _notify_removed(
    integration_id: int, user_id: int, account_id: int | None, account_name: str
) -> None:
    notify_removed_task(integration_id, user_id, account_id, account_name)


def _notify_removed_many(integration_id: int, items: list[list[Any]]) -> None:
    for start in range(0, len(items), BATCH):
        notify_removed_many_task(integration_id, items[start : start + BATCH])


# --- confirmation tokens ----------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CONFIRM_SALT)


def confirm_token(link: AccountLink) -> str:
    """A signed token naming the link, its member and its account (so a relink voids it)."""
    return _serializer().dumps([link.id, link.user_id, link.chat_account_id])


def read_confirm_token(token: str) -> tuple[int, int, int] | None:
    """The (link, user, account) ids in ``token``; None when forged, mangled or expired."""
    try:
        value = _serializer().loads(token, max_age=CONFIRM_MAX_AGE)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value)):
        return None
    return value[0], value[1], value[2]


def _external(endpoint: str, **values: Any) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


# --- the tasks --------------------------------------------------------------------------------


def _ensure_default(notification: Notification, reason: str) -> None:
    """The notice always goes on the default channel (e-mail) too; unique per channel, so it
    is added only once."""
    channel = transports.default.key
    if any(d.channel == channel for d in notification.deliveries):
        return
    notification.deliveries.append(
        Delivery(
            organization_id=notification.organization_id,
            channel=channel,
            state=DeliveryState.PENDING,
            reason=reason,
            next_attempt_at=utcnow(),
        )
    )


@task()
def notify_created_task(integration_id: int, user_ids: list[int]) -> None:
    """Write "your account X is now linked" for each member; auto matches ask to confirm."""
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        return
    organization = db.session.get(Organization, integration.organization_id)
    assert organization is not None
    rows = db.session.execute(
        select(AccountLink, ChatAccount, User)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .join(User, User.id == AccountLink.user_id)
        .where(AccountLink.integration_id == integration.id, AccountLink.user_id.in_(user_ids))
    ).all()
    provider = transports.name(integration.provider)
    accounts_url = _external("me.accounts")
    created = []
    for link, account, user in rows:
        auto = link.method in AUTO_METHODS and link.confirmed_at is None
        url = _external("me.confirm", token=confirm_token(link)) if auto else accounts_url
        with force_locale(mail.locale_for(user)):
            title = _(
                "Your %(provider)s account %(account)s is now linked",
                provider=provider,
                account=account.name,
            )
            body = _(
                "Notifications from %(org)s now reach you as direct messages on %(provider)s."
                " Not you? Open %(url)s and choose \u201cThis is not me\u201d.",
                org=organization.name,
                provider=provider,
                url=accounts_url,
            )
            if auto:
                body += " " + _(
                    "We matched this account automatically. Please confirm that it is yours:"
                    " %(url)s",
                    url=url,
                )
        notification, _new = create_notification(
            organization,
            user,
            title=title,
            body=body,
            url=url,
            idempotency_key=f"link-notice:{link.id}:{link.chat_account_id}",
        )
        _ensure_default(notification, "link_notice")
        created.append(notification)
    db.session.commit()
    wake([d for n in created for d in n.deliveries if d.state is DeliveryState.PENDING])


@task()
def notify_removed_task(
    integration_id: int, user_id: int, account_id: int | None, account_name: str
) -> None:
    """Write "your account X was unlinked"; content held for that account goes by e-mail."""
    _write_removed_notices(integration_id, [[user_id, account_id, account_name]])


@task()
def notify_removed_many_task(integration_id: int, items: list[list[Any]]) -> None:
    """:func:`notify_removed_task` for many members: [user id, account id, account name]."""
    _write_removed_notices(integration_id, items)


def _write_removed_notices(integration_id: int, items: list[list[Any]]) -> None:
    """The "unlinked" notices of ``items``, in one transaction, then wake their deliveries."""
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        return
    organization = db.session.get(Organization, integration.organization_id)
    assert organization is not None
    users = {
        user.id: user
        for user in db.session.scalars(
            select(User).where(
                User.id.in_([item[0] for item in items]),
                User.organization_id == integration.organization_id,
            )
        )
    }
    due: list[Delivery] = []
    for user_id, account_id, account_name in items:
        user = users.get(user_id)
        if user is not None:
            due += _write_removed(integration, organization, user, account_id, account_name)
    db.session.commit()
    wake(due)


def _write_removed(
    integration: Integration,
    organization: Organization,
    user: User,
    account_id: int | None,
    account_name: str,
) -> list[Delivery]:
    """One member's "unlinked" notice; returns the deliveries to wake after the commit."""
    released = reroute_held(user, account_id)
    provider = transports.name(integration.provider)
    with force_locale(mail.locale_for(user)):
        title = _(
            "Your %(provider)s account %(account)s was unlinked",
            provider=provider,
            account=account_name,
        )
        body = _(
            "Notifications from %(org)s no longer go to this %(provider)s account. If you did"
            " not expect this, please contact your administrator.",
            org=organization.name,
            provider=provider,
        )
    notification, _new = create_notification(
        organization, user, title=title, body=body, url=_external("me.accounts")
    )
    _ensure_default(notification, "link_notice")
    return [*notification.deliveries, *released]


def reroute_held(user: User, account_id: int | None) -> list[Delivery]:
    """Held chat deliveries for an account the member no longer has: send them on the default
    channel (e-mail) instead.

    A notification that already has a delivery there keeps it and the held row stays held
    (unique per notification and channel). The caller commits and wakes the returned rows.
    """
    if account_id is None:
        return []
    held = db.session.scalars(
        select(Delivery)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Notification.recipient_id == user.id,
            Delivery.organization_id == user.organization_id,
            Delivery.state == DeliveryState.SKIPPED,
            Delivery.reason == HELD_REASON,
            Delivery.chat_account_id == account_id,
        )
    ).all()
    channel = transports.default.key
    moved = []
    for delivery in held:
        if any(d.channel == channel for d in delivery.notification.deliveries):
            continue
        delivery.channel = channel
        delivery.integration_id = None
        delivery.chat_account_id = None
        delivery.state = DeliveryState.PENDING
        delivery.reason = "not_linked"
        delivery.next_attempt_at = utcnow()
        moved.append(delivery)
    return moved


def release_held(link: AccountLink) -> list[Delivery]:
    """The member confirmed ``link``: its held deliveries become due (caller commits, wakes)."""
    held = db.session.scalars(
        select(Delivery)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Notification.recipient_id == link.user_id,
            Delivery.organization_id == link.organization_id,
            Delivery.state == DeliveryState.SKIPPED,
            Delivery.reason == HELD_REASON,
            Delivery.chat_account_id == link.chat_account_id,
        )
    ).all()
    for delivery in held:
        delivery.state = DeliveryState.PENDING
        delivery.reason = "released_confirmed"
        delivery.next_attempt_at = utcnow()
    return list(held)
