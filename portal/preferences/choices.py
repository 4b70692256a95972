"""A member's own choices: per category chat / e-mail / both / off where the company allows,
and which tool gets the DM when they are linked on several (issue 16 item 3). The company's
order of tools lives here too. Each change owns its transaction and is audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..extensions import db
from ..integrations.models import AccountLink, Integration
from ..integrations.registry import providers
from . import categories, hours
from . import events as _events  # noqa: F401  (registers the audit actions)
from .models import CHANNEL_KINDS, MemberPreference, NotificationCategory

#: What a member picks for a category → (chat, e-mail); "default" follows the company.
OPTIONS: dict[str, tuple[bool | None, bool | None]] = {
    "default": (None, None),
    "chat": (True, False),
    "email": (False, True),
    "both": (True, True),
    "off": (False, False),
}

OPTION_LABELS = {
    "default": _l("Company default"),
    "chat": _l("Chat"),
    "email": _l("E-mail"),
    "both": _l("Chat and e-mail"),
    "off": _l("Off"),
}


class PreferenceError(ValueError):
    """Choices that cannot be saved; ``errors`` maps each category id to why."""

    def __init__(self, errors: dict[int, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def allowed(category: NotificationCategory, option: str) -> bool:
    """Whether a member may pick ``option`` for ``category``: a locked channel kind keeps the
    company's value."""
    values = OPTIONS.get(option)
    if values is None:
        return False
    return all(
        value is None or not category.locked(kind) or value == category.default(kind)
        for kind, value in zip(CHANNEL_KINDS, values, strict=True)
    )


def fully_locked(category: NotificationCategory) -> bool:
    return all(category.locked(kind) for kind in CHANNEL_KINDS)


def option_of(category: NotificationCategory, preference: MemberPreference | None) -> str:
    """The option a stored choice stands for now: a locked kind reads as the company's value
    (so "both" under a chat lock still reads "both", and a choice made before a lock reads
    as what the lock leaves of it)."""
    if preference is None or (preference.chat is None and preference.email is None):
        return "default"
    stored_values = (preference.chat, preference.email)
    values = tuple(
        category.default(kind) if value is None or category.locked(kind) else value
        for kind, value in zip(CHANNEL_KINDS, stored_values, strict=True)
    )
    return next((o for o, pair in OPTIONS.items() if pair == values), "default")


def stored(user: User) -> dict[int, MemberPreference]:
    """The member's stored choices by category id."""
    return {
        preference.category_id: preference
        for preference in db.session.scalars(
            select(MemberPreference).where(
                MemberPreference.user_id == user.id,
                MemberPreference.organization_id == user.organization_id,
            )
        )
    }


def linked_tools(user: User) -> list[str]:
    """The registered tools the member has a link on, in registry order."""
    linked = set(
        db.session.scalars(
            select(Integration.provider)
            .join(AccountLink, AccountLink.integration_id == Integration.id)
            .where(
                AccountLink.user_id == user.id,
                AccountLink.organization_id == user.organization_id,
            )
        )
    )
    registered = providers.keys()
    return [key for key in registered if key in linked]


#: A member's digest choice: (mode, "HH:MM", ISO weekday), or None for the company's.
Digest = tuple[str, str, int] | None


def digest_of(preference: MemberPreference | None) -> Digest:
    if preference is None or preference.digest is None:
        return None
    return preference.digest, preference.digest_time or "09:00", preference.digest_weekday or 1


def save(
    user: User,
    options: Mapping[int, str],
    *,
    tool: str | None,
    digests: Mapping[int, tuple[object, object, object]] | None = None,
) -> bool:
    """Store the member's options (category id → option), digests (category id → mode,
    time, weekday; mode "company" = the company's) and preferred tool (``None``: the
    company's order); commits, audited. Checks everything first: one refused choice (a
    locked category, an unknown option, category or digest time) → PreferenceError and
    nothing saved."""
    organization = db.session.get(Organization, user.organization_id)
    assert organization is not None
    if not organization.allow_channel_choice:
        raise PermissionError("the organization does not let members choose")
    by_id = {category.id: category for category in categories.all_for(organization)}
    errors: dict[int, str] = {}
    for category_id, option in options.items():
        category = by_id.get(category_id)
        if category is None:
            errors[category_id] = str(_l("This category does not exist."))
        elif option not in OPTIONS:
            errors[category_id] = str(_l("Choose one of the options."))
        elif not allowed(category, option):
            errors[category_id] = str(
                _l("Your company requires this category: it cannot be changed.")
            )
    chosen_digests: dict[int, Digest] = {}
    for category_id, (mode, clock, weekday) in (digests or {}).items():
        if category_id not in by_id:
            errors[category_id] = str(_l("This category does not exist."))
            continue
        try:
            chosen_digests[category_id] = (
                None if mode == "company" else hours.digest_setting(mode, clock, weekday)
            )
        except hours.HoursError as problem:
            errors[category_id] = problem.message
    if tool is not None and tool not in linked_tools(user):
        errors[0] = str(_l("Choose one of the tools your account is linked on."))
    if errors:
        raise PreferenceError(errors)
    current = stored(user)
    changes: dict[str, tuple[object, object]] = {}
    for category_id in set(options) | set(chosen_digests):
        category, preference = by_id[category_id], current.get(category_id)
        before = (option_of(category, preference), digest_of(preference))
        after = (
            options.get(category_id, before[0]),
            chosen_digests[category_id] if category_id in chosen_digests else before[1],
        )
        if before != after:
            _store(user, category, *after, preference)
            changes[category.key] = (_describe(before), _describe(after))
    tool_before = user.preferred_provider
    user.preferred_provider = tool
    if not changes and tool_before == tool:
        return False
    audit.record(
        "member.preferences_changed",
        organization=organization,
        actor=user,
        target=("user", user.id, user.name),
        before={"tool": tool_before, **{key: old for key, (old, _new) in changes.items()}},
        after={"tool": tool, **{key: new for key, (_old, new) in changes.items()}},
    )
    db.session.commit()
    return True


def _describe(choice: tuple[str, Digest]) -> str:
    """ "email", or "email, daily 09:00" — how the audit log shows a category's choice."""
    option, digest = choice
    return option if digest is None else f"{option}, {digest[0] or 'at once'} {digest[1]}"


def _store(
    user: User,
    category: NotificationCategory,
    option: str,
    digest: Digest,
    preference: MemberPreference | None,
) -> None:
    chat, email = OPTIONS[option]
    # A locked kind is not the member's to store: it follows the company even if unlocked later.
    chat = None if category.chat_locked else chat
    email = None if category.email_locked else email
    if chat is None and email is None and digest is None:
        if preference is not None:
            db.session.execute(delete(MemberPreference).where(MemberPreference.id == preference.id))
        return
    if preference is None:
        preference = MemberPreference(
            organization_id=user.organization_id, user_id=user.id, category_id=category.id
        )
        db.session.add(preference)
    preference.chat, preference.email = chat, email
    preference.digest, preference.digest_time, preference.digest_weekday = digest or (
        None,
        None,
        None,
    )


def set_tool_order(organization: Organization, order: Sequence[str], *, actor: User) -> bool:
    """The company's order of tools for members linked on several; commits, audited. Must
    name every registered tool once."""
    keys = providers.keys()
    if sorted(order) != sorted(keys) or len(set(order)) != len(order):
        raise ValueError("the order must name every tool once")
    before = list(organization.provider_order or keys)
    if before == list(order):
        return False
    organization.provider_order = list(order)
    audit.record(
        "organization.tool_order_changed",
        organization=organization,
        actor=actor,
        target=("organization", organization.id, organization.name),
        before={"order": before},
        after={"order": list(order)},
    )
    db.session.commit()
    return True
