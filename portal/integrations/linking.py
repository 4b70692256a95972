"""Member ↔ chat account links, shared by every provider.

All links go through here: by hand from the account dialog (:func:`link_account`), in bulk by
e-mail after a preview (:func:`preview_email_matches` / :func:`apply_email_matches`) or after
every directory sync (:func:`auto_link`), removed (:func:`unlink_account`, or a whole bulk batch
with :func:`undo_batch`); the delivery worker flags links with ``health.flag_link``. Each
function owns its transaction and writes ``link.*`` audit events with before/after in it.

The list queries (:func:`list_members`, :func:`list_accounts`) page with ids first and stay
fast at 10,000 members: every filter is on indexed columns of one organization.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Text, and_, cast, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..me import notices
from ..notifications import services as notifications
from ..notifications.routing import Route
from ..paging import contains_ci
from .link_audit import account_data, record_link_created, record_link_removed
from .models import AccountLink, ChatAccount, DirectorySync, Integration, LinkBatch, LinkMethod
from .registry import providers

#: Members and accounts shown in the preview's example lists.
PREVIEW_SAMPLE = 20
#: Links removed per DELETE when a batch is undone (well under every bound-parameter limit).
UNDO_CHUNK = 1000


class LinkConflict(Exception):
    """The link cannot be made (the account is taken, or gone); the message is shown."""


class NotLinked(Exception):
    """The member has no account in this integration, so there is nothing to test."""


@dataclass(frozen=True)
class MemberRow:
    """One line of the member list: the member and, when linked, the link and account."""

    user: User
    link: AccountLink | None
    account: ChatAccount | None


@dataclass(frozen=True)
class AccountChoice:
    """One line of the account dialog: the account and who has it, if anyone."""

    account: ChatAccount
    linked_user_id: int | None
    linked_user_name: str | None


@dataclass
class AutoLinkPreview:
    """What e-mail auto-linking would do, shown before the admin confirms."""

    matches: list[tuple[int, int]] = field(default_factory=list)  # (user id, account id)
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # member, account, e-mail
    #: E-mail addresses claimed twice (two members or two accounts) or taken by someone else.
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (e-mail, why)
    #: Addresses whose only account has left the workspace: the admin decides.
    deactivated: list[str] = field(default_factory=list)
    already_linked: int = 0
    left: int = 0
    left_examples: list[str] = field(default_factory=list)

    @property
    def needs_admin(self) -> int:
        """Unlinked members no automatic link will reach: conflicts, deactivated, no match."""
        return len(self.conflicts) + len(self.deactivated) + self.left


def _normalize(email: str | None) -> str:
    return (email or "").strip().lower()


def _organization(integration: Integration) -> Organization | None:
    return db.session.get(Organization, integration.organization_id)


def find_link(integration: Integration, user_id: int) -> AccountLink | None:
    """The member's link in this integration, if any."""
    return db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id, AccountLink.user_id == user_id
        )
    )


def link_account(
    integration: Integration,
    user: User,
    account: ChatAccount,
    *,
    actor: User | None,
    method: LinkMethod = LinkMethod.MANUAL,
    confirmed: bool = False,
) -> AccountLink:
    """Link ``user`` to ``account`` (replacing the member's previous account); commits.

    ``confirmed``: the member proved the account is theirs (they signed in at the provider),
    so the link starts confirmed. Raises :class:`LinkConflict` when the account is linked to
    someone else or inactive.
    """
    if (
        account.integration_id != integration.id
        or user.organization_id != integration.organization_id
    ):
        raise LinkConflict(_("This account does not belong to this workspace."))
    if not account.is_active:
        raise LinkConflict(_("This account is no longer in the workspace."))
    holder = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id,
            AccountLink.chat_account_id == account.id,
        )
    )
    if holder is not None and holder.user_id != user.id:
        raise LinkConflict(_("This account is already linked to another member."))
    link = find_link(integration, user.id)
    before = None
    if link is not None:
        if link.chat_account_id == account.id:
            return link
        previous = db.session.get(ChatAccount, link.chat_account_id)
        before = {**account_data(previous), "method": link.method.value}
        db.session.delete(link)
        db.session.flush()
    link = AccountLink(
        organization_id=integration.organization_id,
        integration_id=integration.id,
        user_id=user.id,
        chat_account_id=account.id,
        method=method,
        linked_by_id=actor.id if actor else None,
        confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(link)
    record_link_created(
        integration,
        _organization(integration),
        actor=actor,
        member=(user.id, user.name),
        account=account,
        method=method,
        before=before,
    )
    try:
        db.session.commit()
    except IntegrityError:
        # Someone linked the same account a moment earlier (unique per integration).
        db.session.rollback()
        raise LinkConflict(_("This account is already linked to another member.")) from None
    notices.link_created(link)
    return link


def link_by_email(
    integration: Integration, account: ChatAccount, *, method: LinkMethod = LinkMethod.EMAIL
) -> AccountLink | None:
    """Link ``account`` to the one active member with its e-mail address, when automatic
    linking is on and neither is linked yet (a new hire, a bot installer); commits. ``None``
    when nothing was linked."""
    if not account.email or not account.is_active or not auto_link_enabled(integration):
        return None
    members = db.session.scalars(
        select(User).where(
            User.organization_id == integration.organization_id,
            User.is_active_flag.is_(True),
            func.lower(User.email) == account.email,
        )
    ).all()
    if len(members) != 1 or find_link(integration, members[0].id) is not None:
        return None
    try:
        return link_account(integration, members[0], account, actor=None, method=method)
    except LinkConflict:
        db.session.rollback()
        return None


def unlink_account(integration: Integration, user: User, *, actor: User | None) -> bool:
    """Remove the member's link, auditing what it was; commits. False when there was none."""
    link = find_link(integration, user.id)
    if link is None:
        return False
    account = db.session.get(ChatAccount, link.chat_account_id)
    record_link_removed(
        integration,
        _organization(integration),
        actor=actor,
        member=(user.id, user.name),
        account=account,
        method=link.method,
    )
    db.session.delete(link)
    db.session.commit()
    notices.link_removed(integration, user, account)
    return True


def send_test_message(integration: Integration, user: User, *, actor: User) -> ChatAccount:
    """Send ``user`` a test message on their account in ``integration``; commits.

    The delivery is pinned to this integration and account, even when the member is linked
    on another chat tool that routing would prefer: an admin on a provider's page tests that
    provider. It is otherwise an ordinary notification (outbox, worker, pacing, errors,
    e-mail fallback, delivery log). Returns the account; raises :class:`NotLinked`, queueing
    nothing, when the member has no link here.
    """
    link = find_link(integration, user.id)
    if link is None or link.organization_id != user.organization_id:
        raise NotLinked
    account = link.chat_account
    pinned = Route(integration.provider, "test", integration.id, account.id)
    notifications.send_test_message(user, actor=actor, pinned=pinned)
    return account


def preview_email_matches(integration: Integration) -> AutoLinkPreview:
    """Compare members' and accounts' e-mail addresses (trimmed, case-insensitive).

    Two queries and dictionaries: about 50 ms for 10,000 members against 10,000 accounts.
    """
    preview = AutoLinkPreview()
    members = db.session.execute(
        select(User.id, User.name, User.email).where(
            User.organization_id == integration.organization_id, User.is_active_flag.is_(True)
        )
    ).all()
    accounts = db.session.execute(
        select(ChatAccount.id, ChatAccount.name, ChatAccount.email, ChatAccount.is_active).where(
            ChatAccount.integration_id == integration.id, ChatAccount.email.is_not(None)
        )
    ).all()
    links = AccountLink.pairs(integration.id)
    linked_users = {user_id for user_id, _ in links}
    account_holder = {account_id: user_id for user_id, account_id in links}
    by_email: dict[str, list[Any]] = defaultdict(list)
    inactive: set[str] = set()
    for account in accounts:
        if account.is_active:
            by_email[_normalize(account.email)].append(account)
        else:
            inactive.add(_normalize(account.email))
    members_by_email: dict[str, int] = defaultdict(int)
    for member in members:
        members_by_email[_normalize(member.email)] += 1
    for member in members:
        if member.id in linked_users:
            preview.already_linked += 1
            continue
        email = _normalize(member.email)
        candidates = by_email.get(email, [])
        if not candidates and email in inactive:
            preview.deactivated.append(email)
        elif not candidates:
            preview.left += 1
            if len(preview.left_examples) < PREVIEW_SAMPLE:
                preview.left_examples.append(member.name)
        elif len(candidates) > 1 or members_by_email[email] > 1:
            preview.conflicts.append((email, _("claimed by more than one account or member")))
        elif candidates[0].id in account_holder:
            preview.conflicts.append((email, _("the account is linked to another member")))
        else:
            preview.matches.append((member.id, candidates[0].id))
            if len(preview.examples) < PREVIEW_SAMPLE:
                preview.examples.append((member.name, candidates[0].name, email))
    return preview


def auto_link_enabled(integration: Integration) -> bool:
    """Whether syncs link e-mail matches by themselves: the provider's directory gives
    addresses and the organization has not chosen preview only."""
    provider = providers.get(integration.provider)
    organization = _organization(integration)
    return bool(
        provider is not None
        and provider.links_by_email
        and organization is not None
        and organization.auto_link_by_email
    )


def apply_email_matches(integration: Integration, *, actor: User | None) -> int:
    """The admin confirms the preview: link every unambiguous match as one batch; commits.

    The matches are recomputed here, never taken from the browser. Returns how many links
    were made.
    """
    batch, user_ids = _link_matches(integration, actor=actor, sync=None)
    db.session.commit()
    notices.links_created(integration, user_ids, committed=True)
    return batch.linked if batch else 0


def auto_link(integration: Integration, sync: DirectorySync) -> int:
    """After a directory sync: link every unique, exact match as one automatic batch; commits.

    The batch and the run's count are one transaction: if anything fails midway, no link of
    the batch stays (the error is re-raised for the sync to report). Returns the links made.
    """
    try:
        batch, user_ids = _link_matches(integration, actor=None, sync=sync)
        sync.auto_linked = batch.linked if batch else 0
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    notices.links_created(integration, user_ids, committed=True)
    return sync.auto_linked


def _link_matches(
    integration: Integration, *, actor: User | None, sync: DirectorySync | None
) -> tuple[LinkBatch | None, list[int]]:
    """Insert the preview's matches as one batch, each audited (method "email"); no commit.

    Returns the batch (None when nothing matched) and the members linked.
    """
    preview = preview_email_matches(integration)
    organization = _organization(integration)
    batch = None
    if preview.matches:
        batch = LinkBatch(
            organization_id=integration.organization_id,
            integration_id=integration.id,
            automatic=sync is not None,
            sync_id=sync.id if sync else None,
            created_by_id=actor.id if actor else None,
            linked=len(preview.matches),
        )
        db.session.add(batch)
        db.session.flush()
        _insert_links(integration, batch, preview.matches, organization, actor)
    if batch is not None or sync is None:
        # A sync that found nothing new leaves no trace; the admin's button always does.
        audit.record(
            "link.auto_linked",
            organization=organization,
            actor=actor,
            target=("integration", integration.id, integration.display_name),
            data={
                "linked": len(preview.matches),
                "conflicts": len(preview.conflicts),
                "deactivated": len(preview.deactivated),
                "left": preview.left,
                "provider": integration.provider,
                "batch": batch.id if batch else None,
                "automatic": sync is not None,
            },
        )
    return batch, [user_id for user_id, _ in preview.matches]


def _insert_links(
    integration: Integration,
    batch: LinkBatch,
    matches: list[tuple[int, int]],
    organization: Organization | None,
    actor: User | None,
) -> None:
    """One bulk INSERT of the batch's links and a ``link.created`` event for each."""
    # Whole-organization reads (two queries) instead of IN lists of thousands of ids.
    names = {
        row.id: row.name
        for row in db.session.execute(
            select(User.id, User.name).where(User.organization_id == integration.organization_id)
        )
    }
    accounts = {
        account.id: account
        for account in db.session.scalars(
            select(ChatAccount).where(ChatAccount.integration_id == integration.id)
        )
    }
    db.session.execute(
        AccountLink.__table__.insert(),
        [
            {
                "organization_id": integration.organization_id,
                "integration_id": integration.id,
                "user_id": user_id,
                "chat_account_id": account_id,
                "method": LinkMethod.EMAIL,
                "linked_by_id": actor.id if actor else None,
                "batch_id": batch.id,
                "created_at": batch.created_at,
            }
            for user_id, account_id in matches
        ],
    )
    for user_id, account_id in matches:
        record_link_created(
            integration,
            organization,
            actor=actor,
            member=(user_id, names.get(user_id)),
            account=accounts[account_id],
            method=LinkMethod.EMAIL,
            data={"batch": batch.id},
        )


def latest_automatic_batch(integration: Integration) -> LinkBatch | None:
    """The newest batch a sync linked by itself (with at least one link), undone or not."""
    return db.session.scalar(
        select(LinkBatch)
        .where(
            LinkBatch.integration_id == integration.id,
            LinkBatch.automatic.is_(True),
            LinkBatch.linked > 0,
        )
        .order_by(LinkBatch.id.desc())
        .limit(1)
    )


def undo_batch(integration: Integration, batch_id: int, *, actor: User) -> int:
    """Remove the links a batch made that are still as it made them, each audited; commits.

    A link the admin removed or relinked since is no longer the batch's (a relink is a new
    row); one the member confirmed is theirs and stays. Raises :class:`LinkConflict` for a
    batch unknown here, one already undone, or links that changed while this ran. Returns
    how many links were removed; each member hears about it.
    """
    batch = db.session.scalar(
        select(LinkBatch)
        .where(LinkBatch.id == batch_id, LinkBatch.integration_id == integration.id)
        .with_for_update()
    )
    if batch is None:
        raise LinkConflict(_("This automatic linking was not found."))
    if batch.undone_at is not None:
        raise LinkConflict(_("This automatic linking was already undone."))
    as_made = and_(
        AccountLink.integration_id == integration.id,
        AccountLink.batch_id == batch.id,
        AccountLink.method == LinkMethod.EMAIL,
        AccountLink.confirmed_at.is_(None),
    )
    rows = db.session.execute(
        select(AccountLink.id, AccountLink.user_id, User.name, ChatAccount)
        .join(User, User.id == AccountLink.user_id)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(as_made)
        .with_for_update(of=AccountLink)
    ).all()
    removed = 0
    ids = [row.id for row in rows]
    for start in range(0, len(ids), UNDO_CHUNK):
        chunk = ids[start : start + UNDO_CHUNK]
        result = db.session.execute(delete(AccountLink).where(as_made, AccountLink.id.in_(chunk)))
        removed += result.rowcount  # type: ignore[attr-defined]
    if removed != len(rows):
        # A member confirmed (or the admin unlinked) in between: nothing of this undo stays.
        db.session.rollback()
        raise LinkConflict(_("Some of these links changed just now. Please try again."))
    organization = _organization(integration)
    for row in rows:
        record_link_removed(
            integration,
            organization,
            actor=actor,
            member=(row.user_id, row.name),
            account=row.ChatAccount,
            method=LinkMethod.EMAIL,
            data={"reason": "auto_link_undone", "batch": batch.id},
        )
    batch.undone_at = utcnow()
    batch.undone_by_id = actor.id
    batch.undone = removed
    audit.record(
        "link.auto_link_undone",
        organization=organization,
        actor=actor,
        target=("integration", integration.id, integration.display_name),
        data={
            "batch": batch.id,
            "removed": removed,
            "kept": batch.linked - removed,
            "provider": integration.provider,
        },
    )
    # Read before the commit expires the accounts (else one SELECT each to reload them).
    told = [(row.user_id, row.ChatAccount.id, row.ChatAccount.name) for row in rows]
    db.session.commit()
    notices.links_removed(integration, told)
    return removed


def list_members(
    integration: Integration | None,
    organization: Organization,
    *,
    query: str,
    state: str,
    page: int,
    per_page: int,
) -> tuple[list[MemberRow], int]:
    """The organization's members with their link in ``integration``: search, filter, page."""
    stmt = select(User.id).where(User.organization_id == organization.id)
    if query:
        stmt = stmt.where(or_(contains_ci(User.name, query), contains_ci(User.email, query)))
    if integration is not None and state in ("linked", "unlinked"):
        linked = select(AccountLink.user_id).where(AccountLink.integration_id == integration.id)
        stmt = stmt.where(User.id.in_(linked) if state == "linked" else User.id.not_in(linked))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    ids = stmt.order_by(User.name, User.id).limit(per_page).offset((page - 1) * per_page)
    users = db.session.scalars(
        select(User).where(User.id.in_(ids.scalar_subquery())).order_by(User.name, User.id)
    ).all()
    links: dict[int, tuple[AccountLink, ChatAccount]] = {}
    if integration is not None and users:
        for link, account in db.session.execute(
            select(AccountLink, ChatAccount)
            .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
            .where(
                AccountLink.integration_id == integration.id,
                AccountLink.user_id.in_([u.id for u in users]),
            )
        ).tuples():
            links[link.user_id] = (link, account)
    rows = [MemberRow(u, *links.get(u.id, (None, None))) for u in users]
    return rows, total


def member_row(integration: Integration | None, user: User) -> MemberRow:
    """One member's line, after a change."""
    if integration is None:
        return MemberRow(user, None, None)
    link = find_link(integration, user.id)
    account = db.session.get(ChatAccount, link.chat_account_id) if link else None
    return MemberRow(user, link, account)


def list_accounts(
    integration: Integration, *, query: str, page: int, per_page: int
) -> tuple[list[AccountChoice], int]:
    """The workspace's active accounts for the dialog, searchable by name, e-mail or any
    provider detail kept with the account (a Chatwork contact's organization or department)."""
    stmt = select(ChatAccount.id).where(
        ChatAccount.integration_id == integration.id, ChatAccount.is_active.is_(True)
    )
    if query:
        stmt = stmt.where(
            or_(
                contains_ci(ChatAccount.name, query),
                contains_ci(ChatAccount.email, query),
                contains_ci(cast(ChatAccount.extra, Text), query),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    ids = (
        stmt.order_by(ChatAccount.name, ChatAccount.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = db.session.execute(
        select(ChatAccount, User.id, User.name)
        .outerjoin(
            AccountLink,
            and_(
                AccountLink.chat_account_id == ChatAccount.id,
                AccountLink.integration_id == integration.id,
            ),
        )
        .outerjoin(User, User.id == AccountLink.user_id)
        .where(ChatAccount.id.in_(ids.scalar_subquery()))
        .order_by(ChatAccount.name, ChatAccount.id)
    ).tuples()
    return [AccountChoice(account, user_id, name) for account, user_id, name in rows], total
