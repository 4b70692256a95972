"""Notification categories with the company's rules, and members' choices per category."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime, utcnow
from ..extensions import db

#: The two kinds of channel a rule or a choice speaks of: a chat DM (on whichever tool the
#: member is reached), and e-mail.
CHANNEL_KINDS = ("chat", "email")


class NotificationCategory(db.Model):  # type: ignore[name-defined]
    """A kind of notification the host SaaS sends ("one_on_one", "feedback"…), with the
    company's default for each channel kind and whether members may change it (a lock)."""

    __tablename__ = "notification_categories"
    __table_args__ = (
        UniqueConstraint("organization_id", "key", name="uq_notification_categories_key"),
        # Target of the composite foreign keys below: a choice's category is in its organization.
        UniqueConstraint("id", "organization_id", name="uq_notification_categories_id_org"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    #: What the API names it by: lower-case letters, digits and "_" (``categories.KEY``).
    key: Mapped[str] = mapped_column(String(40))
    label_ja: Mapped[str] = mapped_column(String(60))
    label_en: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(300), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: The company's default: a chat DM (e-mail when the member cannot be reached by chat).
    chat_on: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The company's default: an e-mail as well (or instead, with chat off).
    email_on: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Members may not change the chat default ("required by your company").
    chat_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    email_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The company's default batching: "" (each at once), "daily" or "weekly" digests, at
    #: ``digest_time`` ("HH:MM", the member's zone) and, weekly, on ``digest_weekday`` (ISO).
    digest: Mapped[str] = mapped_column(String(8), default="", server_default="")
    digest_time: Mapped[str] = mapped_column(String(5), default="09:00", server_default="09:00")
    digest_weekday: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def label(self, locale: str) -> str:
        return self.label_en if locale.startswith("en") else self.label_ja

    def default(self, kind: str) -> bool:
        return bool(self.chat_on if kind == "chat" else self.email_on)

    def locked(self, kind: str) -> bool:
        return bool(self.chat_locked if kind == "chat" else self.email_locked)


class MemberPreference(db.Model):  # type: ignore[name-defined]
    """A member's own choice for one category; ``None`` on a channel kind = the company's
    default (a lock makes the default win anyway)."""

    __tablename__ = "member_preferences"
    __table_args__ = (
        UniqueConstraint("user_id", "category_id", name="uq_member_preferences_user_category"),
        ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["category_id", "organization_id"],
            ["notification_categories.id", "notification_categories.organization_id"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    category_id: Mapped[int] = mapped_column(Integer)
    chat: Mapped[bool | None] = mapped_column(Boolean)
    email: Mapped[bool | None] = mapped_column(Boolean)
    #: The member's own batching for the category (None: the company's), as on the category.
    digest: Mapped[str | None] = mapped_column(String(8))
    digest_time: Mapped[str | None] = mapped_column(String(5))
    digest_weekday: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
