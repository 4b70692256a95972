"""What a member (and their admin's policy) changes about their own links and channel.

Each function owns its transaction and writes its audit event in it.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..integrations import linking
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..notifications import mail
from ..notifications.models import Delivery, DeliveryState, Notification
from ..notifications.routing import PREFER_BOTH, PREFER_EMAIL
from ..notifications.services import wake
from ..notifications.transports import transports
from ..support import events as _events  # noqa: F401  (registers the audit actions)
from ..tasks import task
from ..webhooks import reports
from . import notices

log = logging.getLogger(__name__)

#: What a member may choose (``User.channel_preference``; "chat" is stored as None).
CHANNEL_CHOICES = ("chat", PREFER_EMAIL, PREFER_BOTH)


def own_links(user: User) -> list[tuple[AccountLink, ChatAccount, Integration]]:
    """The member's links, each with its account and integration, in provider order."""
    return [
        (link, account, integration)
        for link, account, integration in db.session.execute(
            select(AccountLink, ChatAccount, Integration)
            .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
            .join(Integration, Integration.id == AccountLink.integration_id)
            .where(
                AccountLink.user_id == user.id,
                AccountLink.organization_id == user.organization_id,
            )
            .order_by(Integration.provider)
        ).tuples()
    ]


def last_sent_by_account(user: User) -> dict[int, object]:
    """chat account id → when the member last received a DM on it."""
    rows = db.session.execute(
        select(Delivery.chat_account_id, func.max(Delivery.sent_at))
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Notification.recipient_id == user.id,
            Delivery.organization_id == user.organization_id,
            Delivery.state == DeliveryState.SENT,
            Delivery.chat_account_id.is_not(None),
        )
        .group_by(Delivery.chat_account_id)
    ).tuples()
    return {account_id: sent_at for account_id, sent_at in rows if account_id is not None}


def own_link_or_none(user: User, link_id: int) -> AccountLink | None:
    """The member's own link; someone else's (or another organization's) is None → 404."""
    return db.session.scalar(
        select(AccountLink).where(
            AccountLink.id == link_id,
            AccountLink.user_id == user.id,
            AccountLink.organization_id == user.organization_id,
        )
    )


def disown(user: User, link: AccountLink) -> None:
    """ "This is not me": unlink through the shared linking service and tell the admins."""
    integration = db.session.get(Integration, link.integration_id)
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert integration is not None
    audit.record(
        "link.disowned",
        organization=db.session.get(Organization, user.organization_id),
        actor=user,
        target=("user", user.id, user.name),
        before={
            "provider": integration.provider,
            "external_id": account.external_id if account else None,
            "name": account.name if account else None,
            "method": link.method.value,
        },
    )
    reports.link_event(
        "link.disowned",
        integration,
        user_id=user.id,
        account=account,
        method=link.method,
        link_id=link.id,
    )
    # unlink_account commits the events above with the removal, and sends the member's notice.
    linking.unlink_account(integration, user, actor=user)
    alert_admins_disowned(integration.id, user.id, account.name if account else "")


def set_channel(user: User, choice: str) -> None:
    """Store the member's channel choice (chat, email, both); the organization must allow it."""
    if choice not in CHANNEL_CHOICES:
        raise ValueError(choice)
    organization = db.session.get(Organization, user.organization_id)
    assert organization is not None
    if not organization.allow_channel_choice:
        raise PermissionError("the organization does not let members choose")
    before = user.channel_preference or "chat"
    user.channel_preference = None if choice == "chat" else choice
    audit.record(
        "member.channel_changed",
        organization=organization,
        actor=user,
        target=("user", user.id, user.name),
        before={"channel": before},
        after={"channel": choice},
    )
    db.session.commit()


def confirm(user: User, link: AccountLink) -> int:
    """The member confirms an automatic match; held sensitive content is released. Commits."""
    if link.confirmed_at is not None:
        return 0
    link.confirmed_at = utcnow()
    released = notices.release_held(link)
    account = db.session.get(ChatAccount, link.chat_account_id)
    audit.record(
        "link.confirmed",
        organization=db.session.get(Organization, user.organization_id),
        actor=user,
        target=("user", user.id, user.name),
        after={
            "external_id": account.external_id if account else None,
            "name": account.name if account else None,
            "method": link.method.value,
            "released": len(released),
        },
    )
    integration = db.session.get(Integration, link.integration_id)
    assert integration is not None
    reports.link_event(
        "link.confirmed",
        integration,
        user_id=user.id,
        account=account,
        method=link.method,
        link_id=link.id,
    )
    for delivery in released:
        reports.notification_event("notification.released", delivery)
    db.session.commit()
    wake(released)
    return len(released)


def set_policy(
    organization: Organization,
    *,
    actor: User,
    hold_sensitive: bool,
    allow_choice: bool,
    auto_link: bool,
) -> None:
    """The admin's notification policy for members; commits (and releases nothing by itself).

    ``auto_link`` False makes directory syncs leave e-mail matches in the preview; links made
    before stay (the provider page can undo an automatic batch).
    """
    before = {
        "hold_sensitive_until_confirmed": organization.hold_sensitive_until_confirmed,
        "allow_channel_choice": organization.allow_channel_choice,
        "auto_link_by_email": organization.auto_link_by_email,
    }
    organization.hold_sensitive_until_confirmed = hold_sensitive
    organization.allow_channel_choice = allow_choice
    organization.auto_link_by_email = auto_link
    after = {
        "hold_sensitive_until_confirmed": hold_sensitive,
        "allow_channel_choice": allow_choice,
        "auto_link_by_email": auto_link,
    }
    if before == after:
        return
    audit.record(
        "organization.policy_changed",
        organization=organization,
        actor=actor,
        target=("organization", organization.id, organization.name),
        before=before,
        after=after,
    )
    db.session.commit()


def alert_admins_disowned(integration_id: int, user_id: int, account_name: str) -> None:
    """E-mail the organization's admins that a member said a linked account is not theirs."""
    alert_admins("link_disowned", integration_id, user_id, account_name)


def alert_admins(template: str, integration_id: int, user_id: int, account_name: str) -> None:
    """E-mail the organization's admins about what a member found wrong with an account
    (``template``: ``link_disowned``, ``self_link_conflict``), in the background; never
    breaks the member's request."""
    try:
        _send_member_alert(template, integration_id, user_id, account_name)
    except Exception:
        log.exception("could not queue the %s alert", template)


@task()
def _send_member_alert(template: str, integration_id: int, user_id: int, account_name: str) -> None:
    integration = db.session.get(Integration, integration_id)
    member = db.session.get(User, user_id)
    if integration is None or member is None:
        return
    url = mail.external_url("integrations.members", provider=integration.provider)
    provider = transports.name(integration.provider)
    mail.email_admins(
        integration.organization_id,
        template,
        lambda _admin: {
            "provider": provider,
            "member": member,
            "account": account_name,
            "url": url,
        },
    )
