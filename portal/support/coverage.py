"""Coverage of one integration: how many members are linked and, for the rest, why.

Generic reasons come from the directory and the links; a provider refines them through
``ChatProvider.unlinked_reasons`` (Chatwork: suggestion, ambiguous name, not a contact) and
``ChatProvider.unreachable_reason`` (Teams: linked, but the bot is not installed), and declares
those reasons in ``ChatProvider.coverage_reasons``. Each reason carries its one-click next step
as data (:data:`REASONS` and the providers'); the dashboard only renders them.
Four whole-organization queries, no per-member query: fine at 10,000 members.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..accounts.models import User
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..integrations.providers.base import CoverageReason as Reason
from ..integrations.registry import providers
from ..me.invitations import summary as invitation_summary

UNLINKED = (("state", "unlinked"),)
LINKED = (("state", "linked"),)
REASONS: dict[str, Reason] = {
    "match_available": Reason(
        _l("E-mail matches an account: can be linked automatically"),
        _l("Preview automatic linking"),
        "integrations.autolink_preview",
    ),
    "no_email_match": Reason(
        _l("No account with the member's e-mail address"),
        _l("Link by hand or import a CSV"),
        args=UNLINKED,
    ),
    "account_deactivated": Reason(
        _l("Their chat account is deactivated"),
        _l("Link another account by hand"),
        args=UNLINKED,
        resync=True,
    ),
    "deactivated": Reason(
        _l("Linked account deactivated in the chat tool"),
        _l("Review these links"),
        args=LINKED,
        linked=True,
        resync=True,
    ),
    "flagged": Reason(
        _l("Linked, but the chat tool refuses messages to it"),
        _l("Review these links"),
        args=LINKED,
        linked=True,
        resync=True,
    ),
}


def reasons_for(provider_key: str) -> dict[str, Reason]:
    """The generic reasons and the provider's own (``ChatProvider.coverage_reasons``)."""
    provider = providers.get(provider_key)
    return {**REASONS, **(provider.coverage_reasons if provider else {})}


def all_reasons() -> dict[str, Reason]:
    """Every reason any provider gives (their keys never collide), for the dashboard."""
    merged = dict(REASONS)
    for provider in providers.all():
        merged.update(provider.coverage_reasons)
    return merged


@dataclass
class Coverage:
    integration: Integration
    members: int = 0
    linked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: How the linked members were linked (``LinkMethod`` values: "self" = by the member).
    methods: Counter[str] = field(default_factory=Counter)
    #: Linked members the portal installed the chat app for (Teams), by outcome.
    installs: Counter[str] = field(default_factory=Counter)
    #: Each invited member's latest invitation, by state (sent, bounced, linked, expired…).
    invitations: Counter[str] = field(default_factory=Counter)
    #: Unlinked members can be invited to link themselves (the tool has a member sign-in).
    can_invite: bool = False

    @property
    def percent(self) -> int:
        return round(100 * self.linked / self.members) if self.members else 0

    @property
    def working(self) -> int:
        """Linked and reachable: linked minus the links a reason marks unreachable."""
        known = reasons_for(self.integration.provider)
        unreachable = (n for r, n in self.reasons.items() if r in known and known[r].linked)
        return self.linked - sum(unreachable)


def _normalize(email: str | None) -> str:
    return (email or "").strip().lower()


def compute(integration: Integration) -> Coverage:
    """The coverage of ``integration`` over its organization's active members."""
    coverage = Coverage(integration)
    members = db.session.execute(
        select(User.id, User.email).where(
            User.organization_id == integration.organization_id, User.is_active_flag.is_(True)
        )
    ).all()
    links = db.session.execute(
        select(AccountLink.user_id, AccountLink.flagged_reason)
        .add_columns(ChatAccount.is_active, ChatAccount.extra, AccountLink.method)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(AccountLink.integration_id == integration.id)
    ).all()
    taken = set(
        db.session.scalars(
            select(AccountLink.chat_account_id).where(AccountLink.integration_id == integration.id)
        )
    )
    # E-mail -> whether an unlinked account with it is active (an active one wins).
    free_emails: dict[str, bool] = {}
    for account_id, email, active in db.session.execute(
        select(ChatAccount.id, ChatAccount.email, ChatAccount.is_active).where(
            ChatAccount.integration_id == integration.id, ChatAccount.email.is_not(None)
        )
    ):
        if account_id not in taken:
            key = _normalize(email)
            free_emails[key] = free_emails.get(key, False) or bool(active)
    provider = providers.get(integration.provider)
    known = reasons_for(integration.provider)
    coverage.members = len(members)
    active_ids = {member.id for member in members}
    linked_users = set()
    for user_id, flagged, active, extra, method in links:
        linked_users.add(user_id)
        if user_id not in active_ids:
            continue
        coverage.methods[method.value] += 1
        if install := ((extra or {}).get("install") or {}).get("state"):
            coverage.installs[str(install)] += 1
        if flagged:  # a refusal the dashboard knows better by name (bot_not_installed)
            coverage.reasons[flagged if flagged in known else "flagged"] += 1
        elif not active:
            coverage.reasons["deactivated"] += 1
        elif provider and (reason := provider.unreachable_reason(extra or {})):
            coverage.reasons[reason] += 1
    coverage.linked = len(linked_users & active_ids)
    unlinked = [member for member in members if member.id not in linked_users]
    specific = provider.unlinked_reasons(integration, [m.id for m in unlinked]) if provider else {}
    for member in unlinked:
        reason = specific.get(member.id)
        if reason is None:
            match = free_emails.get(_normalize(member.email))
            reason = (
                "no_email_match"
                if match is None
                else ("match_available" if match else "account_deactivated")
            )
        coverage.reasons[reason] += 1
    coverage.invitations = invitation_summary(integration)
    coverage.can_invite = bool(unlinked) and bool(provider and provider.member_sign_in())
    return coverage
