"""What a DM offers besides its text: 「確認しました」 and 「はい、私です」 / 「私ではありません」.

- **acknowledge** — on a notification the host sent with ``ack_requested``, until it is
  acknowledged;
- **confirm_link** / **disown_link** — on the first DM sent over an automatic link the member
  has not confirmed yet (what /me's "this is me" / "this is not me" do).

:func:`message_for` builds the provider-neutral :class:`Message` of a notification for one
account, in the recipient's language, with these choices as buttons for providers that have
them (each carrying :func:`sign_reference`'s value) or, for the others, a signed single-use
link to the portal page (:func:`issue_page_token`). After a press the same function renders
the updated message. Doing the action is ``me/actions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale, format_datetime, pgettext
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import aliased

from ..accounts.models import User
from ..database import utcnow
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..integrations.providers.base import ChatProvider, Message, MessageAction
from .mail import external_url, locale_for
from .models import ActionToken, Delivery, DeliveryState, Notification
from .routing import AUTO_METHODS

ACKNOWLEDGE = "acknowledge"
CONFIRM_LINK = "confirm_link"
DISOWN_LINK = "disown_link"
KEYS = (ACKNOWLEDGE, CONFIRM_LINK, DISOWN_LINK)

#: Button values: which notification, sent through which integration. Not timed: a press is
#: authenticated by the provider's signature and the presser's identity, the value only says
#: what was pressed — and a reminder may well be acknowledged weeks later.
REFERENCE_SALT = "dm-action"
#: The portal page's link in a DM without buttons (Chatwork): timed, and single-use by its row.
PAGE_SALT = "dm-action-page"
PAGE_MAX_AGE = timedelta(hours=48)


@dataclass(frozen=True)
class Reference:
    notification_id: int
    integration_id: int


def sign_reference(notification: Notification, integration: Integration) -> str:
    """The value a button carries: the notification and integration ids, signed."""
    serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=REFERENCE_SALT)
    return str(serializer.dumps([notification.id, integration.id]))


def read_reference(value: str) -> Reference | None:
    """The ids a button's value names; None when forged or malformed."""
    serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=REFERENCE_SALT)
    try:
        ids = serializer.loads(value)
    except BadSignature:
        return None
    if not _two_ids(ids):
        return None
    return Reference(ids[0], ids[1])


def _two_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


# --- which choices ------------------------------------------------------------------------------


def link_of(integration: Integration, recipient: User) -> AccountLink | None:
    """The recipient's link in ``integration``, if any."""
    return db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id, AccountLink.user_id == recipient.id
        )
    )


#: Is there a DM to the account, of another notification, sent before this one's (or before now
#: when this one is not sent yet)? One statement, built once: every DM to an unconfirmed
#: auto-link asks it.
_OWN = aliased(Delivery)
_EARLIER_DM = (
    select(Delivery.id)
    .where(
        Delivery.chat_account_id == bindparam("account"),
        Delivery.state == DeliveryState.SENT,
        Delivery.notification_id != bindparam("notification"),
        Delivery.sent_at
        < func.coalesce(
            select(_OWN.sent_at)
            .where(
                _OWN.notification_id == bindparam("notification"),
                _OWN.chat_account_id == bindparam("account"),
                _OWN.state == DeliveryState.SENT,
            )
            .limit(1)
            .scalar_subquery(),
            bindparam("now", type_=Delivery.sent_at.type),
        ),
    )
    .limit(1)
)


def _first_dm(notification: Notification, account: ChatAccount) -> bool:
    """No other notification reached this account before this one (its first DM)."""
    earlier = db.session.scalar(
        _EARLIER_DM, {"account": account.id, "notification": notification.id, "now": utcnow()}
    )
    return earlier is None


def offered(
    notification: Notification, account: ChatAccount, link: AccountLink | None
) -> list[str]:
    """The choices a DM of ``notification`` to ``account`` offers now."""
    keys = []
    if notification.ack_requested and notification.acknowledged_at is None:
        keys.append(ACKNOWLEDGE)
    if (
        link is not None
        and link.chat_account_id == account.id
        and link.method in AUTO_METHODS
        and link.confirmed_at is None
        and _first_dm(notification, account)
    ):
        keys += [CONFIRM_LINK, DISOWN_LINK]
    return keys


def label(key: str) -> str:
    """A choice's button label (the issue's words: 確認しました, はい、私です, 私ではありません)."""
    labels = {
        ACKNOWLEDGE: pgettext("chat button", "Acknowledge"),
        CONFIRM_LINK: pgettext("chat button", "Yes, this is me"),
        DISOWN_LINK: pgettext("chat button", "This is not me"),
    }
    return str(labels[key])


STYLES = {ACKNOWLEDGE: "primary", CONFIRM_LINK: "primary", DISOWN_LINK: "danger"}


def acknowledged_note(notification: Notification, by: User | None) -> str:
    """ "Acknowledged by X at T", in the current locale (the portal's and the DM's line)."""
    assert notification.acknowledged_at is not None
    return str(
        _(
            "Acknowledged by %(name)s at %(time)s",
            name=by.name if by else "—",
            time=format_datetime(notification.acknowledged_at, "short"),
        )
    )


def message_for(
    notification: Notification,
    recipient: User,
    provider: ChatProvider,
    integration: Integration,
    account: ChatAccount,
    *,
    link: AccountLink | None,
    notes: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Message:
    """The DM of ``notification`` to ``account``, with the choices it offers now. ``link`` is
    the recipient's link in ``integration`` (:func:`link_of`; the dispatcher loads it with the
    delivery).

    For a provider without buttons this issues a page link (a row, flushed: the caller
    commits it with the send's outcome).
    """
    locale = locale_for(recipient)
    keys = offered(notification, account, link)
    with force_locale(locale):
        lines = list(notes)
        if notification.acknowledged_at is not None:
            by = db.session.get(User, notification.acknowledged_by_id or 0)
            lines.insert(0, acknowledged_note(notification, by))
        actions: tuple[MessageAction, ...] = ()
        actions_url = None
        if keys and provider.buttons:
            value = sign_reference(notification, integration)
            actions = tuple(MessageAction(k, label(k), value, STYLES[k]) for k in keys)
        elif keys:
            token = issue_page_token(notification, integration, account, now=now)
            actions_url = external_url("me.notification_actions", token=token)
    return Message(
        title=notification.title,
        body=notification.body,
        url=notification.url,
        locale=locale,
        actions=actions,
        actions_url=actions_url,
        notes=tuple(lines),
    )


# --- the page link of DMs without buttons --------------------------------------------------------


def _page_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PAGE_SALT)


def issue_page_token(
    notification: Notification,
    integration: Integration,
    account: ChatAccount,
    *,
    now: datetime | None = None,
) -> str:
    """A new single-use link for the recipient of ``notification``; an older unused one for
    the same notification and account is replaced (a resent DM carries only the new one)."""
    now = now or utcnow()
    db.session.execute(
        update(ActionToken)
        .where(
            ActionToken.notification_id == notification.id,
            ActionToken.chat_account_id == account.id,
            ActionToken.used_at.is_(None),
            ActionToken.replaced_at.is_(None),
        )
        .values(replaced_at=now)
        .execution_options(synchronize_session=False)
    )
    row = ActionToken(
        organization_id=notification.organization_id,
        notification_id=notification.id,
        user_id=notification.recipient_id,
        integration_id=integration.id,
        chat_account_id=account.id,
        created_at=now,
        expires_at=now + PAGE_MAX_AGE,
    )
    db.session.add(row)
    db.session.flush()
    return str(_page_serializer().dumps([row.id, notification.id]))


class PageTokenInvalid(Exception):
    """The link cannot be used; ``reason``: "invalid", "expired", "used" or "replaced"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_page_token(token: str, *, now: datetime | None = None) -> ActionToken:
    """The row a page link names, still usable; raises :class:`PageTokenInvalid`."""
    now = now or utcnow()
    try:
        ids = _page_serializer().loads(token, max_age=int(PAGE_MAX_AGE.total_seconds()))
    except BadSignature as problem:
        expired = type(problem).__name__ == "SignatureExpired"
        raise PageTokenInvalid("expired" if expired else "invalid") from None
    if not _two_ids(ids):
        raise PageTokenInvalid("invalid")
    row = db.session.get(ActionToken, ids[0])
    if row is None or row.notification_id != ids[1]:
        raise PageTokenInvalid("invalid")
    if row.used_at is not None:
        raise PageTokenInvalid("used")
    if row.replaced_at is not None:
        raise PageTokenInvalid("replaced")
    if row.expires_at <= now:
        raise PageTokenInvalid("expired")
    return row
