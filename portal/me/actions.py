"""A member answers a DM: 「確認しました」, 「はい、私です」, 「私ではありません」.

The same three choices arrive three ways — a Slack button, a Teams card action, the portal page
a Chatwork DM links to — and end here, where they do exactly what the portal does elsewhere:
:func:`..notifications.acknowledgements.acknowledge`, and /me's :func:`.services.confirm` and
:func:`.services.disown`. Nothing a provider sends is trusted: the button's value is signed by
us and must name a notification of the integration's own organization, and the presser must
be the account the recipient is linked to there.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import force_locale
from flask_babel import gettext as _

from ..accounts.models import User
from ..database import utcnow
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..integrations.providers.base import Message
from ..integrations.registry import providers
from ..notifications import acknowledgements
from ..notifications import actions as dm
from ..notifications.mail import locale_for
from ..notifications.models import ActionToken, Notification
from . import services


class Refused(Exception):
    """The press is not acted on; ``reason``: "invalid" (not a value we issued for this
    integration), "not_recipient" (someone else pressed) or "not_offered"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Pressed:
    """What a press did: ``outcome`` is "acknowledged", "already_acknowledged", "confirmed",
    "already_confirmed" or "disowned"."""

    notification: Notification
    recipient: User
    integration: Integration
    account: ChatAccount
    outcome: str

    def message(self) -> Message:
        """The DM as it reads now, with a line saying what was done."""
        with force_locale(locale_for(self.recipient)):
            note = _NOTES.get(self.outcome)
            notes = (str(note()),) if note else ()
        provider = providers.get(self.integration.provider)
        assert provider is not None  # pressed in one of its DMs: it is registered
        return dm.message_for(
            self.notification,
            self.recipient,
            provider,
            self.integration,
            self.account,
            link=dm.link_of(self.integration, self.recipient),
            notes=notes,
        )


_NOTES = {
    "confirmed": lambda: _("Thank you: the account is confirmed."),
    "already_confirmed": lambda: _("You already confirmed this account."),
    "disowned": lambda: _(
        "The account was unlinked and your administrators were told. Notifications now"
        " arrive by e-mail."
    ),
}


def press(integration: Integration, value: str, action: str, presser: str) -> Pressed:
    """A button of a DM sent through ``integration`` was pressed by the provider's user
    ``presser`` (Slack user id, Entra object id); act, or raise :class:`Refused`."""
    if action not in dm.KEYS:
        raise Refused("not_offered")
    reference = dm.read_reference(value)
    if reference is None or reference.integration_id != integration.id:
        raise Refused("invalid")
    notification = db.session.get(Notification, reference.notification_id)
    if notification is None or notification.organization_id != integration.organization_id:
        raise Refused("invalid")
    recipient = db.session.get(User, notification.recipient_id)
    link = dm.link_of(integration, recipient) if recipient else None
    account = db.session.get(ChatAccount, link.chat_account_id) if link else None
    if (
        recipient is None
        or link is None
        or account is None
        or not presser
        or account.external_id.lower() != presser.lower()
    ):
        raise Refused("not_recipient")
    outcome = _perform(action, notification, recipient, link, integration.provider)
    return Pressed(notification, recipient, integration, account, outcome)


def pressed_again(
    integration_id: int, notification_id: int, account_id: int, outcome: str
) -> Pressed | None:
    """A press's result loaded again by its ids (a background task updating the DM)."""
    integration = db.session.get(Integration, integration_id)
    notification = db.session.get(Notification, notification_id)
    account = db.session.get(ChatAccount, account_id)
    recipient = db.session.get(User, notification.recipient_id) if notification else None
    if integration is None or notification is None or account is None or recipient is None:
        return None
    return Pressed(notification, recipient, integration, account, outcome)


def _perform(
    action: str, notification: Notification, member: User, link: AccountLink | None, channel: str
) -> str:
    """Do ``action`` through the portal's own services (each commits)."""
    if action == dm.ACKNOWLEDGE:
        try:
            done = acknowledgements.acknowledge(notification, member, channel)
        except acknowledgements.NotRequested:
            raise Refused("not_offered") from None
        return "acknowledged" if done == "acknowledged" else "already_acknowledged"
    if link is None:
        raise Refused("not_offered")
    if action == dm.CONFIRM_LINK:
        if link.confirmed_at is not None:
            return "already_confirmed"
        services.confirm(member, link)
        return "confirmed"
    services.disown(member, link)
    return "disowned"


# --- the page a DM without buttons links to ------------------------------------------------------


@dataclass(frozen=True)
class ActionPage:
    """What the page shows: the notification and the choices it still offers."""

    token: ActionToken
    notification: Notification
    integration: Integration
    account: ChatAccount
    link: AccountLink | None
    choices: list[str]


def open_page(token: str, member: User) -> ActionPage:
    """The page of a link, for the signed-in ``member``; raises
    :class:`..notifications.actions.PageTokenInvalid` for a link that cannot be used and
    :class:`Refused` ("not_recipient") when ``member`` is not the one it was sent to."""
    row = dm.read_page_token(token)
    if row.user_id != member.id or row.organization_id != member.organization_id:
        raise Refused("not_recipient")
    notification = db.session.get(Notification, row.notification_id)
    integration = db.session.get(Integration, row.integration_id)
    account = db.session.get(ChatAccount, row.chat_account_id)
    if notification is None or integration is None or account is None:
        raise dm.PageTokenInvalid("invalid")
    link = dm.link_of(integration, member)
    if link is not None and link.chat_account_id != account.id:
        link = None  # relinked since the DM: its link choices are void
    choices = dm.offered(notification, account, link)
    return ActionPage(row, notification, integration, account, link, choices)


def answer_page(page: ActionPage, member: User, action: str) -> str:
    """Do ``action`` from the page and spend its link (in the action's transaction); the
    outcome as for a press. Raises :class:`Refused` ("not_offered") for a choice the page
    does not offer."""
    if action not in page.choices:
        raise Refused("not_offered")
    page.token.used_at = utcnow()
    outcome = _perform(action, page.notification, member, page.link, page.integration.provider)
    # The services commit what they change; an answer that changed nothing (already
    # confirmed) still spends the link.
    db.session.commit()
    return outcome
