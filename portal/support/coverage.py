"""Coverage of one integration: how many members are linked and, for the rest, why.

Generic reasons come from the directory and the links; a provider may refine them through
``ChatProvider.unlinked_reasons`` (e.g. Chatwork "not a contact", Teams "bot not installed").
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
from ..integrations.registry import providers

#: Reason → label shown on the dashboard (provider hooks may return others; shown as is).
REASON_LABELS = {
    "match_available": _l("E-mail matches an account: can be linked automatically"),
    "no_email_match": _l("No account with the member's e-mail address"),
    "not_contact": _l("Not a Chatwork contact of the connected account"),
    "bot_not_installed": _l("The bot is not installed for this member"),
    "deactivated": _l("Linked account deactivated in the chat tool"),
    "flagged": _l("Linked, but the chat tool refuses messages to it"),
}


@dataclass
class Coverage:
    integration: Integration
    members: int = 0
    linked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def percent(self) -> int:
        return round(100 * self.linked / self.members) if self.members else 0

    @property
    def working(self) -> int:
        """Linked and reachable: linked minus flagged and deactivated accounts."""
        return self.linked - self.reasons["flagged"] - self.reasons["deactivated"]


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
        select(AccountLink.user_id, AccountLink.flagged_reason, ChatAccount.is_active)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(AccountLink.integration_id == integration.id)
    ).all()
    taken = set(
        db.session.scalars(
            select(AccountLink.chat_account_id).where(AccountLink.integration_id == integration.id)
        )
    )
    free_emails = {
        _normalize(email)
        for account_id, email in db.session.execute(
            select(ChatAccount.id, ChatAccount.email).where(
                ChatAccount.integration_id == integration.id,
                ChatAccount.is_active.is_(True),
                ChatAccount.email.is_not(None),
            )
        )
        if account_id not in taken
    }
    coverage.members = len(members)
    linked_users = set()
    for user_id, flagged, active in links:
        linked_users.add(user_id)
        if flagged:
            coverage.reasons["flagged"] += 1
        elif not active:
            coverage.reasons["deactivated"] += 1
    active_ids = {member.id for member in members}
    coverage.linked = len(linked_users & active_ids)
    unlinked = [member for member in members if member.id not in linked_users]
    provider = providers.get(integration.provider)
    specific = provider.unlinked_reasons(integration, [m.id for m in unlinked]) if provider else {}
    for member in unlinked:
        reason = specific.get(member.id)
        if reason is None:
            reason = (
                "match_available" if _normalize(member.email) in free_emails else "no_email_match"
            )
        coverage.reasons[reason] += 1
    return coverage
