"""An organization's notification categories and the company's rule for each (issue 16
items 1–2). Every organization has the default set (``general`` first); admins add their own.
Each change owns its transaction and is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from .. import text
from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from . import events as _events  # noqa: F401  (registers the audit actions)
from . import hours
from .models import CHANNEL_KINDS, NotificationCategory

#: The key the API sends: lower-case letters, digits and "_", starting with a letter.
KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: The category of notifications that name none (and of those sent before categories).
DEFAULT_KEY = "general"
LABEL_MAX = 60
DESCRIPTION_MAX = 300

#: The set every organization starts with: what an HR / 1-on-1 / goals product sends.
DEFAULTS: tuple[tuple[str, str, str, str], ...] = (
    (DEFAULT_KEY, "一般", "General", "ほかのどのカテゴリにも当てはまらないお知らせ"),
    ("one_on_one", "1on1", "1-on-1s", "1on1の予定・リマインダー・メモの共有"),
    ("feedback", "フィードバック", "Feedback", "受け取ったフィードバックや感謝のメッセージ"),
    ("goals", "目標", "Goals", "目標の更新・承認依頼・期日"),
    ("survey", "サーベイ", "Surveys", "サーベイへの回答のお願いとリマインダー"),
)


class CategoryError(ValueError):
    """A category that cannot be saved: ``field`` names the form field, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RuleChange:
    chat_on: bool
    email_on: bool
    chat_locked: bool
    email_locked: bool
    #: Raw form values, checked by ``hours.digest_setting``.
    digest: object = ""
    digest_time: object = "09:00"
    digest_weekday: object = 1


def ensure_defaults(organization: Organization) -> None:
    """Create the default set once, in the caller's transaction (a new organization gets it
    when created; migration 0014 gave it to those before). INSERT … ON CONFLICT DO NOTHING:
    a concurrent request making them too neither fails nor rolls back the caller's changes."""
    if db.session.scalar(
        select(func.count())
        .select_from(NotificationCategory)
        .where(NotificationCategory.organization_id == organization.id)
    ):
        return
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(NotificationCategory)
        .values(
            [
                {
                    "organization_id": organization.id,
                    "key": key,
                    "label_ja": label_ja,
                    "label_en": label_en,
                    "description": description,
                    "position": position,
                    "chat_on": True,
                    "email_on": False,
                    "chat_locked": False,
                    "email_locked": False,
                    "created_at": utcnow(),
                }
                for position, (key, label_ja, label_en, description) in enumerate(DEFAULTS)
            ]
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "key"])
    )


def all_for(organization: Organization) -> list[NotificationCategory]:
    """The organization's categories in display order."""
    ensure_defaults(organization)
    return list(
        db.session.scalars(
            select(NotificationCategory)
            .where(NotificationCategory.organization_id == organization.id)
            .order_by(NotificationCategory.position, NotificationCategory.id)
        )
    )


def find(organization: Organization, key: str) -> NotificationCategory | None:
    ensure_defaults(organization)
    return db.session.scalar(
        select(NotificationCategory).where(
            NotificationCategory.organization_id == organization.id,
            NotificationCategory.key == key,
        )
    )


def get(organization: Organization, category_id: int) -> NotificationCategory | None:
    """One of the organization's categories by id (another organization's is None → 404)."""
    return db.session.scalar(
        select(NotificationCategory).where(
            NotificationCategory.organization_id == organization.id,
            NotificationCategory.id == category_id,
        )
    )


def default(organization: Organization) -> NotificationCategory:
    found = find(organization, DEFAULT_KEY)
    assert found is not None  # ensure_defaults made it; it cannot be deleted
    return found


def _one_line(value: object, field: str, limit: int, required: bool) -> str:
    """One line of printable text (``text.one_line``, the API's rule) of at most ``limit``."""
    if value is not None and not isinstance(value, str):
        raise CategoryError(
            field, str(_l("Use at most %(count)s characters, on one line.", count=limit))
        )
    value = (value or "").strip()
    if required and not value:
        raise CategoryError(field, str(_l("Enter a name.")))
    try:
        fits = len(text.one_line(value)) <= limit
    except text.BadText:
        fits = False
    if not fits:
        raise CategoryError(
            field, str(_l("Use at most %(count)s characters, on one line.", count=limit))
        )
    return value


def _label(value: object, field: str) -> str:
    return _one_line(value, field, LABEL_MAX, required=True)


def _description(value: object) -> str:
    return _one_line(value, "description", DESCRIPTION_MAX, required=False)


def create(
    organization: Organization,
    *,
    actor: User | None,
    key: object,
    label_ja: object,
    label_en: object,
    description: object = "",
) -> NotificationCategory:
    """Add a category (company default: chat, unlocked); commits. Bad input → CategoryError,
    nothing saved."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise CategoryError(
            "key",
            str(_l("Use 1 to 40 lower-case letters, digits or “_”, starting with a letter.")),
        )
    category = NotificationCategory(
        organization_id=organization.id,
        key=key,
        label_ja=_label(label_ja, "label_ja"),
        label_en=_label(label_en, "label_en"),
        description=_description(description),
        position=len(all_for(organization)),
    )
    if find(organization, key) is not None:
        raise CategoryError("key", str(_l("A category with this key exists already.")))
    db.session.add(category)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise CategoryError("key", str(_l("A category with this key exists already."))) from None
    audit.record(
        "category.created",
        organization=organization,
        actor=actor,
        target=("category", category.id, category.key),
        after=_snapshot(category),
    )
    db.session.commit()
    return category


def _snapshot(category: NotificationCategory) -> dict[str, object]:
    return {
        # Not "key": the audit log redacts fields of that name as secrets.
        "category": category.key,
        "label_ja": category.label_ja,
        "label_en": category.label_en,
        "description": category.description,
        **{f"{kind}_on": category.default(kind) for kind in CHANNEL_KINDS},
        **{f"{kind}_locked": category.locked(kind) for kind in CHANNEL_KINDS},
        "digest": category.digest,
        "digest_time": category.digest_time,
        "digest_weekday": category.digest_weekday,
    }


def update(
    category: NotificationCategory,
    *,
    actor: User,
    label_ja: object,
    label_en: object,
    description: object,
    rule: RuleChange,
) -> bool:
    """Change a category's names and rule; commits, audited with before and after. Returns
    whether anything changed. Bad input → CategoryError, nothing saved."""
    values = {
        "label_ja": _label(label_ja, "label_ja"),
        "label_en": _label(label_en, "label_en"),
        "description": _description(description),
    }
    try:
        digest = hours.digest_setting(rule.digest, rule.digest_time, rule.digest_weekday)
    except hours.HoursError as problem:
        raise CategoryError(problem.field, problem.message) from None
    before = _snapshot(category)
    for name, value in values.items():
        setattr(category, name, value)
    category.chat_on, category.email_on = rule.chat_on, rule.email_on
    category.chat_locked, category.email_locked = rule.chat_locked, rule.email_locked
    category.digest, category.digest_time, category.digest_weekday = digest
    after = _snapshot(category)
    if before == after:
        return False
    old, new = audit.changed(before, after)
    audit.record(
        "category.changed",
        organization=db.session.get(Organization, category.organization_id),
        actor=actor,
        target=("category", category.id, category.key),
        before=old,
        after=new,
    )
    db.session.commit()
    return True
