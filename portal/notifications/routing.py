"""Where one notification goes: one decision from the category's company rule, the member's
choices and their links (issue 16 item 3).

:func:`decide` is pure — a table of situations in, a route out — so it is unit-tested as a
table; :func:`route` gathers the situation from the database for one member and category.

Rules, in order:

- Each channel kind (chat, e-mail) is on or off: the company's default for the category,
  unless the member changed it and the company did not lock it (and lets members choose).
- Chat on: the member's first reachable chat account, in their preferred tool's order, then
  the company's, then the registry's. None reachable: e-mail instead, so nothing is lost.
- Chat off and e-mail on: e-mail. Both off: nothing is sent; the skipped row says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..accounts.models import Organization, User
from ..extensions import db
from ..integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)
from ..integrations.registry import providers
from ..preferences import categories
from ..preferences.models import MemberPreference, NotificationCategory
from .transports import transports

#: ``User.channel_preference`` values (None is the default routing, like "chat"): only the
#: default channel, or a chat DM and the default channel both — the member's choice for every
#: category they did not set one by one.
PREFER_EMAIL = "email"
PREFER_BOTH = "both"

#: Link methods the member did not make themselves: sensitive content waits for confirmation.
AUTO_METHODS = (LinkMethod.EMAIL, LinkMethod.SUGGESTION)


@dataclass(frozen=True)
class Route:
    #: A key of ``channels.transports``.
    channel: str
    reason: str
    integration_id: int | None = None
    chat_account_id: int | None = None
    #: An e-mail (default channel) delivery goes out next to the chat one, and why.
    also_email: bool = False
    also_email_reason: str = ""
    #: The chat link was matched automatically and the member has not confirmed it yet.
    unconfirmed: bool = False
    #: Nothing is sent (the category is off for this member); a skipped row records why.
    off: bool = False


@dataclass(frozen=True)
class Rule:
    """The company's rule for one category: each channel kind's default and lock."""

    chat_on: bool = True
    email_on: bool = False
    chat_locked: bool = False
    email_locked: bool = False


@dataclass(frozen=True)
class Choice:
    """The member's choice for one category; ``None`` = the company's default."""

    chat: bool | None = None
    email: bool | None = None


@dataclass(frozen=True)
class Reachable:
    """A linked chat account a DM can go to now."""

    provider: str
    integration_id: int
    chat_account_id: int
    unconfirmed: bool = False


@dataclass(frozen=True)
class Situation:
    rule: Rule = Rule()
    choice: Choice = Choice()
    #: The organization lets members choose at all (``allow_channel_choice``).
    may_choose: bool = True
    reachable: tuple[Reachable, ...] = ()
    #: Linked somewhere, but no link is usable (integration broken, account flagged…).
    linked_elsewhere: bool = False
    #: Tools in the order to try: the member's preferred first, then the company's order.
    order: tuple[str, ...] = ()


def _wanted(kind: str, situation: Situation) -> tuple[bool, bool]:
    """Whether ``kind`` is on, and whether that is the member's doing."""
    rule = situation.rule
    default = rule.chat_on if kind == "chat" else rule.email_on
    locked = rule.chat_locked if kind == "chat" else rule.email_locked
    chosen = situation.choice.chat if kind == "chat" else situation.choice.email
    if locked or not situation.may_choose or chosen is None:
        return default, False
    return chosen, chosen != default


def decide(situation: Situation) -> Route:
    """The route for one notification in ``situation`` (pure)."""
    email = transports.default.key
    chat_on, chat_by_member = _wanted("chat", situation)
    email_on, email_by_member = _wanted("email", situation)
    if chat_on:
        order = situation.order
        reachable = sorted(
            situation.reachable,
            key=lambda r: order.index(r.provider) if r.provider in order else len(order),
        )
        if reachable:
            best = reachable[0]
            return Route(
                best.provider,
                "linked",
                best.integration_id,
                best.chat_account_id,
                also_email=email_on,
                also_email_reason=(
                    ("member_preference" if email_by_member else "category_email")
                    if email_on
                    else ""
                ),
                unconfirmed=best.unconfirmed,
            )
        return Route(
            email, "integration_unavailable" if situation.linked_elsewhere else "not_linked"
        )
    if email_on:
        return Route(
            email, "member_preference" if chat_by_member or email_by_member else "category_email"
        )
    return Route(
        email, "member_off" if chat_by_member or email_by_member else "category_off", off=True
    )


def member_choice(user: User, preference: MemberPreference | None) -> Choice:
    """The member's choice for a category: set for it, else their choice for all categories."""
    if preference is not None and (preference.chat is not None or preference.email is not None):
        return Choice(preference.chat, preference.email)
    if user.channel_preference == PREFER_EMAIL:
        return Choice(chat=False, email=True)
    if user.channel_preference == PREFER_BOTH:
        return Choice(chat=True, email=True)
    return Choice()


def tool_order(organization: Organization, preferred: str | None = None) -> tuple[str, ...]:
    """The member's ``preferred`` tool, then the company's order, then the registry's."""
    registered = providers.keys()
    order = [key for key in (organization.provider_order or []) if key in registered]
    order += [key for key in registered if key not in order]
    if preferred in order:
        order.remove(preferred)
        order.insert(0, preferred)
    return tuple(order)


def reachable_links(user: User) -> tuple[tuple[Reachable, ...], bool]:
    """The member's usable chat links, and whether they have links that are not usable."""
    rows = db.session.execute(
        select(AccountLink, Integration)
        .join(Integration, Integration.id == AccountLink.integration_id)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(
            AccountLink.user_id == user.id,
            AccountLink.organization_id == user.organization_id,
            AccountLink.flagged_reason.is_(None),
            ChatAccount.is_active.is_(True),
        )
    ).all()
    registered = providers.keys()
    usable = tuple(
        Reachable(
            integration.provider,
            integration.id,
            link.chat_account_id,
            unconfirmed=link.method in AUTO_METHODS and link.confirmed_at is None,
        )
        for link, integration in rows
        if integration.state is IntegrationState.CONNECTED and integration.provider in registered
    )
    return usable, bool(rows) and not usable


def situation(user: User, category: NotificationCategory) -> Situation:
    """What :func:`decide` needs about ``user`` and ``category``, read from the database."""
    organization = db.session.get(Organization, user.organization_id)
    assert organization is not None
    preference = db.session.scalar(
        select(MemberPreference).where(
            MemberPreference.user_id == user.id, MemberPreference.category_id == category.id
        )
    )
    reachable, linked_elsewhere = reachable_links(user)
    return Situation(
        rule=Rule(category.chat_on, category.email_on, category.chat_locked, category.email_locked),
        choice=member_choice(user, preference),
        may_choose=bool(organization.allow_channel_choice),
        reachable=reachable,
        linked_elsewhere=linked_elsewhere,
        order=tool_order(organization, user.preferred_provider),
    )


def route(user: User, category: NotificationCategory | None = None) -> Route:
    """Where ``user``'s next notification of ``category`` (the organization's default
    category when None) goes."""
    if category is None:
        organization = db.session.get(Organization, user.organization_id)
        assert organization is not None
        category = categories.default(organization)
    return decide(situation(user, category))
