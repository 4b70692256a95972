"""Name suggestions ("候補"): match members to chat accounts that carry no e-mail (Chatwork).

People type their names in many ways: "佐藤 翔太", "佐藤翔太", "佐藤　翔太" (ideographic space),
"翔太 佐藤" (given name first), full-width "ＳＡＴＯ Ｓｈｏｔａ", "Shota Sato", "SATO Shota",
"サトウ ショウタ" or "さとう しょうた". :func:`name_keys` folds every form into comparison keys:

- Unicode NFKC (full-width Latin and digits → half-width, half-width katakana → full-width,
  U+3000 → space), case folded; katakana → hiragana;
- separators removed (spaces of every width, ・, ·, dots, commas, hyphens), so the kana/kanji
  spacing does not matter;
- both orders of a two-part name (family/given or given/family);
- Latin names also without long-vowel spellings ("Shouta", "Satou", "Satoh" → "shota", "sato").

A member and an account match when they share a key. Only one-to-one matches are suggested: a
key claimed by two members or two accounts is ambiguous and left to the admin. Romaji against
kanji (contact "Shota Sato", member "佐藤 翔太") needs a reading dictionary and is not matched;
those members are chosen in the dialog.

Everything is computed from two queries and dictionaries: ~10,000 members × contacts in well
under a second. Confirming writes links with method "suggestion", each audited.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ....accounts.models import Organization, User
from ....audit import service as audit
from ....audit.events import ACTIONS, register
from ....extensions import db
from ...link_audit import record_link_created
from ...models import AccountLink, ChatAccount, Integration, LinkMethod

if "link.suggestions_confirmed" not in ACTIONS:
    register("link.suggestions_confirmed", "positive", _l("Members linked from name suggestions"))

SEPARATORS = re.compile(r"[\s・·･.,、，\-‐_/]+")
#: Long-vowel spellings of Hepburn variants, longest first.
LONG_VOWELS = (("ou", "o"), ("oo", "o"), ("oh", "o"), ("uu", "u"), ("ei", "e"), ("aa", "a"))
KATAKANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().translate(KATAKANA)
    # Macrons of Hepburn romaji ("Satō" → "sato"); kana and kanji have no combining marks left.
    decomposed = unicodedata.normalize("NFD", folded)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not (unicodedata.combining(c) and c < "\u3000"))
    )


def _latin(part: str) -> bool:
    return bool(part) and all("a" <= c <= "z" for c in part)


def _short_vowels(text: str) -> str:
    for long, short in LONG_VOWELS:
        text = text.replace(long, short)
    return text


def name_keys(name: str) -> set[str]:
    """The comparison keys of a name (empty for a blank name)."""
    folded = _fold(name or "")
    parts = [p for p in SEPARATORS.split(folded) if p]
    if not parts:
        return set()
    orders = [parts]
    if len(parts) == 2:
        orders.append([parts[1], parts[0]])
    keys: set[str] = set()
    for order in orders:
        joined = "".join(order)
        keys.add(joined)
        if all(_latin(p) for p in order):
            keys.add("".join(_short_vowels(p) for p in order))
    return {key for key in keys if len(key) >= 2}


@dataclass(frozen=True)
class Suggestion:
    """A member and the one account whose name matches theirs."""

    user_id: int
    user_name: str
    account_id: int
    account_name: str
    department: str


@dataclass
class SuggestionReport:
    """What name matching found for the unlinked members."""

    suggestions: list[Suggestion] = field(default_factory=list)
    #: Members whose name matches several accounts (or an account matching several members).
    ambiguous: list[str] = field(default_factory=list)
    #: Unlinked active members with no account of that name: probably not contacts yet.
    not_found: list[str] = field(default_factory=list)
    not_found_count: int = 0
    already_linked: int = 0
    #: Each unlinked member's case for the coverage dashboard: "suggestion_available",
    #: "ambiguous_name" or "not_contact".
    reasons: dict[int, str] = field(default_factory=dict)


def suggest(integration: Integration, *, sample: int = 200) -> SuggestionReport:
    """Name suggestions for every unlinked active member of the integration's organization."""
    report = SuggestionReport()
    members = db.session.execute(
        select(User.id, User.name)
        .where(User.organization_id == integration.organization_id, User.is_active_flag.is_(True))
        .order_by(User.name, User.id)
    ).all()
    accounts = db.session.execute(
        select(ChatAccount.id, ChatAccount.name, ChatAccount.extra).where(
            ChatAccount.integration_id == integration.id, ChatAccount.is_active.is_(True)
        )
    ).all()
    links = AccountLink.pairs(integration.id)
    linked_users = {user_id for user_id, _ in links}
    linked_accounts = {account_id for _, account_id in links}
    by_key: dict[str, set[int]] = defaultdict(set)
    for account in accounts:
        if account.id in linked_accounts:
            continue
        for key in name_keys(account.name):
            by_key[key].add(account.id)
    account_rows = {account.id: account for account in accounts}
    candidates: dict[int, set[int]] = {}
    claims: dict[int, int] = defaultdict(int)
    for member in members:
        if member.id in linked_users:
            report.already_linked += 1
            continue
        found: set[int] = set()
        for key in name_keys(member.name):
            found |= by_key.get(key, set())
        candidates[member.id] = found
        for account_id in found:
            claims[account_id] += 1
    for member in members:
        if member.id in linked_users:
            continue
        found = candidates[member.id]
        if not found:
            report.reasons[member.id] = "not_contact"
            report.not_found_count += 1
            if len(report.not_found) < sample:
                report.not_found.append(member.name)
        elif len(found) > 1 or claims[next(iter(found))] > 1:
            report.reasons[member.id] = "ambiguous_name"
            report.ambiguous.append(member.name)
        else:
            report.reasons[member.id] = "suggestion_available"
            account = account_rows[next(iter(found))]
            report.suggestions.append(
                Suggestion(
                    member.id,
                    member.name,
                    account.id,
                    account.name,
                    str((account.extra or {}).get("department") or ""),
                )
            )
    return report


def suggestion_for(integration: Integration, user_id: int) -> Suggestion | None:
    """The current suggestion for one member, recomputed (never taken from the browser)."""
    return next((s for s in suggest(integration).suggestions if s.user_id == user_id), None)


def apply_suggestions(
    integration: Integration,
    *,
    actor: User | None,
    only: set[tuple[int, int]] | None = None,
    summary: bool = True,
) -> int:
    """Link suggested pairs in one transaction, each audited (method "suggestion"); commits.

    The suggestions are recomputed here; ``only`` narrows them to the pairs the admin saw in
    the preview, so a pair that changed meanwhile is skipped rather than linked.
    """
    organization = db.session.get(Organization, integration.organization_id)
    chosen = [
        s for s in suggest(integration).suggestions
        if only is None or (s.user_id, s.account_id) in only
    ]  # fmt: skip
    if chosen:
        db.session.execute(
            AccountLink.__table__.insert(),
            [
                {
                    "organization_id": integration.organization_id,
                    "integration_id": integration.id,
                    "user_id": s.user_id,
                    "chat_account_id": s.account_id,
                    "method": LinkMethod.SUGGESTION,
                    "linked_by_id": actor.id if actor else None,
                }
                for s in chosen
            ],
        )
    accounts = {
        account.id: account
        for account in db.session.scalars(
            select(ChatAccount).where(ChatAccount.id.in_([s.account_id for s in chosen]))
        )
    }
    for s in chosen:
        record_link_created(
            integration,
            organization,
            actor=actor,
            member=(s.user_id, s.user_name),
            account=accounts[s.account_id],
            method=LinkMethod.SUGGESTION,
        )
    if summary:
        audit.record(
            "link.suggestions_confirmed",
            organization=organization,
            actor=actor,
            target=("integration", integration.id, integration.display_name),
            data={"linked": len(chosen), "provider": integration.provider},
        )
    db.session.commit()
    return len(chosen)
