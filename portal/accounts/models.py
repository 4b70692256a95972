"""Organizations (tenants), the people who sign in, and their server-side sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import EncryptedJSON
from ..database import UTCDateTime, utcnow
from ..extensions import db
from .permissions import ROLE_PERMISSIONS, Permission, Role


class Organization(db.Model):  # type: ignore[name-defined]
    """A customer company: every other row belongs to exactly one organization."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: URL- and CLI-friendly key ("demo"); unique across the service.
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: When True, notifications marked sensitive wait for the member to confirm an auto-link.
    hold_sensitive_until_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    #: When True, members may choose chat, e-mail or both on /me/accounts (migration 0006).
    allow_channel_choice: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: When True, a directory sync links every unique, exact e-mail match at once (the seed's
    #: 自動的に紐付け); False leaves them in the preview for the admin (migration 0009).
    auto_link_by_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: Provider keys in the order a member linked on several tools gets the DM (None: the
    #: registry's order); a member's own ``preferred_provider`` comes first (migration 0014).
    provider_order: Mapped[list[str] | None] = mapped_column(JSON)
    #: Hold non-urgent notifications outside working hours, in each member's time zone
    #: (``preferences/hours.py``); off until an admin turns it on (migration 0015).
    quiet_hours_on: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The zone of members whose chat tool gives none.
    time_zone: Mapped[str] = mapped_column(
        String(64), default="Asia/Tokyo", server_default="Asia/Tokyo"
    )
    #: Working days as ISO weekday digits ("12345" = Monday to Friday), and hours "HH:MM".
    work_days: Mapped[str] = mapped_column(String(7), default="12345", server_default="12345")
    work_start: Mapped[str] = mapped_column(String(5), default="09:00", server_default="09:00")
    work_end: Mapped[str] = mapped_column(String(5), default="19:00", server_default="19:00")
    #: Japanese public holidays count as days off.
    holidays_off: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="organization", lazy="raise")


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """Someone who signs in: an organization's admin or member, or vendor support staff."""

    __tablename__ = "users"
    __table_args__ = (
        # Support staff belong to no organization; everybody else belongs to exactly one.
        CheckConstraint(
            "(role = 'support' AND organization_id IS NULL)"
            " OR (role <> 'support' AND organization_id IS NOT NULL)",
            name="support_has_no_organization",
        ),
        # Target of composite foreign keys that prove a row's user is in the row's organization.
        UniqueConstraint("id", "organization_id", name="uq_users_id_organization"),
        # The member list's order (name, then id) read straight from the index, so page 150 costs
        # what page 1 does; with the e-mail it also covers the member search and its count.
        Index("ix_users_org_name_id_email", "organization_id", "name", "id", "email"),
        Index("ix_users_org_email", "organization_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    #: Lower-cased, trimmed; the sign-in name.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    #: "ja" or "en"; None follows the browser's Accept-Language.
    locale: Mapped[str | None] = mapped_column(String(8))
    is_active_flag: Mapped[bool] = mapped_column("is_active", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The member's channel choice: "chat", "email", "both"; None = the default routing (0006).
    channel_preference: Mapped[str | None] = mapped_column(String(8))
    #: The tool the member wants DMs on when linked on several; None: the company's order.
    preferred_provider: Mapped[str | None] = mapped_column(String(16))
    #: The member's own time zone (None: their chat tool's, else the company's) and their
    #: narrower hours inside the company's (None: the company's).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    work_start: Mapped[str | None] = mapped_column(String(5))
    work_end: Mapped[str | None] = mapped_column(String(5))
    #: TOTP secret (encrypted, sealed to this user); set at enrollment, active once confirmed.
    mfa_secret: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    mfa_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last 30-second step a code was accepted for: a code works once (no replay).
    mfa_last_step: Mapped[int | None] = mapped_column(Integer)

    organization: Mapped[Organization | None] = relationship(back_populates="users")

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive users cannot sign in
        return bool(self.is_active_flag)

    def can(self, permission: Permission) -> bool:
        """Whether this user's role grants ``permission`` (the one place roles turn into powers)."""
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def is_support(self) -> bool:
        return self.role is Role.SUPPORT


class UserSession(db.Model):  # type: ignore[name-defined]
    """A signed-in browser. The cookie holds only the random id; deleting the row signs it out."""

    __tablename__ = "user_sessions"

    #: SHA-256 of the random session id kept in the cookie, so a database leak yields no sessions.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class LoginFailure(db.Model):  # type: ignore[name-defined]
    """One failed sign-in, kept a few minutes for throttling (per account+IP and per IP)."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_login_failures_ip_at", "ip", "at"),
        Index("ix_login_failures_email_ip_at", "email", "ip", "at"),
    )


def organization_fk(user_column: str = "user_id") -> ForeignKeyConstraint:
    """A composite key proving that ``user_column`` names a user of the row's organization."""
    return ForeignKeyConstraint(
        [user_column, "organization_id"],
        ["users.id", "users.organization_id"],
        ondelete="CASCADE",
    )
