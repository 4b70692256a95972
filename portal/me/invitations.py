"""Invite unlinked members to link their own account (Sentry's model, issue 15 item 2).

The admin invites the unlinked members of one tool; each gets an e-mail with a link that
links once, for 48 hours, and only for them: after signing in to the portal they see "link
your account?" and, on a POST, go through the tool's own sign-in (``self_link``), so the link
rests on what the provider verified, never on the invitation alone. A member is invited at
most once in 24 hours; every invitation is audited; the e-mails go out in the background and
the admin's page shows them by state (queued, sent, bounced, linked, expired).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..crypto import SecretUnavailable, seal, unseal
from ..database import utcnow
from ..extensions import db
from ..integrations.models import AccountLink, Integration, Invitation, InvitationState
from ..integrations.registry import providers
from ..notifications import mail
from ..notifications.mail import MailError
from ..notifications.models import Delivery
from ..notifications.routing import Route
from ..notifications.services import create_notification, wake
from ..notifications.transports import transports
from ..paging import contains_ci
from ..tasks import task

log = logging.getLogger("portal.me.invitations")

#: How long an invitation's link works, and how often a member may be invited.
VALID_FOR = timedelta(hours=48)
AT_MOST_EVERY = timedelta(hours=24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MemberInvitation:
    """Where a member's latest invitation in one tool stands, for their line in the list."""

    state: str  # an InvitationState value, or "expired"
    sent_at: datetime
    expires_at: datetime
    #: When the member may be invited again (``None``: now).
    again_at: datetime | None


def unlinked_members(
    integration: Integration, query: str = "", user_ids: Iterable[int] | None = None
) -> list[User]:
    """The organization's active members with no link in ``integration`` (whose name or
    e-mail contains ``query``, when given; among ``user_ids``, when given)."""
    linked = select(AccountLink.user_id).where(AccountLink.integration_id == integration.id)
    statement = select(User).where(
        User.organization_id == integration.organization_id,
        User.is_active_flag.is_(True),
        User.id.not_in(linked),
    )
    if query:
        statement = statement.where(
            or_(contains_ci(User.name, query), contains_ci(User.email, query))
        )
    if user_ids is not None:
        statement = statement.where(User.id.in_(list(user_ids)))
    return list(db.session.scalars(statement.order_by(User.id)))


def invite_unlinked(
    integration: Integration,
    *,
    actor: User,
    query: str = "",
    user_ids: Iterable[int] | None = None,
) -> dict[str, int]:
    """Invite the unlinked members (all, those ``query`` finds, or the ``user_ids`` chosen on
    the member list) not invited in the last 24 hours; commits, then queues the e-mails.
    Returns how many were invited, how many also by DM, and how many were skipped as invited
    too recently."""
    now = utcnow()
    members = unlinked_members(integration, query, user_ids)
    recent = set(
        db.session.scalars(
            select(Invitation.user_id).where(
                Invitation.integration_id == integration.id,
                Invitation.created_at > now - AT_MOST_EVERY,
            )
        )
    )
    queued: list[int] = []
    for member in members:
        if member.id in recent:
            continue
        token = secrets.token_urlsafe(32)
        invitation = Invitation(
            organization_id=integration.organization_id,
            integration_id=integration.id,
            user_id=member.id,
            token_hash=hash_token(token),
            created_by_id=actor.id,
            created_at=now,
            expires_at=now + VALID_FOR,
        )
        db.session.add(invitation)
        db.session.flush()
        invitation.token_sealed = seal(token, invitation.owner)
        queued.append(invitation.id)
    invited = [member for member in members if member.id not in recent]
    direct = _direct_messages(integration, invited)
    counts = {
        "invited": len(queued),
        "skipped_recent": len(members) - len(queued),
        "direct_messages": len(direct),
    }
    audit.record(
        "link.invited",
        organization=db.session.get(Organization, integration.organization_id),
        actor=actor,
        target=("integration", integration.id, integration.display_name),
        data={"provider": integration.provider, **counts},
    )
    db.session.commit()
    wake(direct)
    if queued:
        send_invitations(queued)
    return counts


def _direct_messages(integration: Integration, members: list[User]) -> list[Delivery]:
    """Also DM each member at the account the tool thinks is theirs (same name, a Chatwork
    suggestion), pointing to /me/accounts: whoever reads it, only the member can link there,
    after signing in to the portal and then to the tool. No token travels in the DM."""
    provider = providers.get(integration.provider)
    if provider is None or not members:
        return []
    likely = provider.likely_accounts(integration, [(m.id, m.name) for m in members])
    organization = db.session.get(Organization, integration.organization_id)
    assert organization is not None
    deliveries: list[Delivery] = []
    url = mail.external_url("me.accounts")
    for member in members:
        account_id = likely.get(member.id)
        if account_id is None:
            continue
        with force_locale(mail.locale_for(member)):
            title = str(
                _l(
                    "Link your %(provider)s account to receive your notifications there",
                    provider=provider.name,
                )
            )
            body = str(
                _l(
                    "Your administrator invited you to link this account. Open Chat "
                    "Connect, sign in, and press “Connect my account”. If this is not "
                    "your account, ignore this message."
                )
            )
        notification, _new = create_notification(
            organization,
            member,
            title=title,
            body=body,
            url=url,
            reason=None,
            pinned=Route(integration.provider, "invitation", integration.id, account_id),
        )  # fmt: skip
        deliveries.extend(notification.deliveries)
    return deliveries


@task()
def send_invitations(invitation_ids: list[int]) -> None:
    """E-mail each invitation; a refused address marks it bounced. Once sent (or bounced) the
    sealed token is dropped: only its hash stays, to recognise the link."""
    for invitation_id in invitation_ids:
        invitation = db.session.get(Invitation, int(invitation_id))
        if invitation is None or invitation.state is not InvitationState.QUEUED:
            continue
        member = db.session.get(User, invitation.user_id)
        integration = db.session.get(Integration, invitation.integration_id)
        try:
            token = unseal(invitation.token_sealed, invitation.owner)
        except SecretUnavailable:
            token = None
        if member is None or integration is None or not isinstance(token, str):
            continue
        url = mail.external_url("me.invitation", token=token)
        try:
            mail.send(
                mail.build(
                    member,
                    "invitation",
                    provider=transports.name(integration.provider),
                    url=url,
                    expires_at=invitation.expires_at,
                )
            )
            invitation.state = InvitationState.SENT
            invitation.token_sealed = None
        except MailError as problem:
            log.warning("invitation %s not sent: %s", invitation.id, problem)
            if problem.permanent:
                invitation.state = InvitationState.BOUNCED
                invitation.token_sealed = None
        db.session.commit()


def find(token: str) -> Invitation | None:
    """The invitation a link names, whatever its state (the page says what is wrong)."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))


def problem(invitation: Invitation | None, user: User) -> str | None:
    """Why this member cannot use this invitation, or ``None``."""
    if invitation is None:
        return str(_l("This invitation link is not valid."))
    if invitation.user_id != user.id:
        return str(
            _l("This invitation was sent to someone else. Sign in as them, or ask your "
               "administrator for your own.")
        )  # fmt: skip
    if invitation.state is InvitationState.LINKED:
        return str(_l("This invitation was used already."))
    if invitation.expired(utcnow()):
        return str(_l("This invitation has expired. Ask your administrator to send a new one."))
    return None


def opened(invitation: Invitation, user: User) -> None:
    """The member chose to link from the invitation: audited, and the first time noted; it
    stays usable by them until it links (a sign-in cancelled at the tool does not spend it,
    and nobody else can use it anyway); commits."""
    db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    audit.record(
        "link.invitation_used",
        organization=db.session.get(Organization, user.organization_id),
        actor=user,
        target=("user", user.id, user.name),
        data={"invitation": invitation.id},
    )
    db.session.commit()


def mark_linked(integration_id: int, user_id: int) -> None:
    """The member linked themselves: their invitations in that tool count as linked, which
    spends them (the caller commits)."""
    db.session.execute(
        update(Invitation)
        .where(Invitation.integration_id == integration_id, Invitation.user_id == user_id)
        .values(state=InvitationState.LINKED)
        .execution_options(synchronize_session=False)
    )


def _latest(integration: Integration, user_ids: list[int] | None = None) -> list[Invitation]:
    """Each member's latest invitation in ``integration`` (of ``user_ids``, when given)."""
    latest = select(Invitation.user_id, func.max(Invitation.id).label("id")).where(
        Invitation.integration_id == integration.id
    )
    if user_ids is not None:
        latest = latest.where(Invitation.user_id.in_(user_ids))
    subquery = latest.group_by(Invitation.user_id).subquery()
    return list(
        db.session.scalars(select(Invitation).join(subquery, subquery.c.id == Invitation.id))
    )


def _state(invitation: Invitation, now: datetime) -> str:
    return "expired" if invitation.expired(now) else invitation.state.value


def for_members(integration: Integration, user_ids: list[int]) -> dict[int, MemberInvitation]:
    """The latest invitation of each of ``user_ids`` (one query for a page of the list)."""
    if not user_ids:
        return {}
    now = utcnow()
    found: dict[int, MemberInvitation] = {}
    for invitation in _latest(integration, user_ids):
        again_at = invitation.created_at + AT_MOST_EVERY
        found[invitation.user_id] = MemberInvitation(
            state=_state(invitation, now),
            sent_at=invitation.created_at,
            expires_at=invitation.expires_at,
            again_at=again_at if again_at > now else None,
        )
    return found


def summary(integration: Integration) -> Counter[str]:
    """Each member's latest invitation in ``integration``, counted by state (expired apart)."""
    now = utcnow()
    return Counter(_state(invitation, now) for invitation in _latest(integration))
