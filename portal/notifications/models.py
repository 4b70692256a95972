"""Notifications the host SaaS asked to send, their deliveries (the outbox), and API keys."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import UTCDateTime, string_enum, utcnow
from ..extensions import db


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker, lease running
    RETRYING = "retrying"  # waiting for next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # permanent error; e-mail fallback made
    DEAD = "dead"  # attempts exhausted; an admin can replay
    SKIPPED = "skipped"  # e.g. held until the member confirms a link


#: ``last_error_code`` of an attempt that raised something no handler expected.
UNEXPECTED_ERROR = "unexpected_error"
#: ``last_error_code`` of a row whose worker stopped mid-send (its lease ran out).
LEASE_EXPIRED = "lease_expired"
#: ``reason`` of the delivery made when another ended unsent: "fallback:<its channel>:<code>".
FALLBACK_REASON_PREFIX = "fallback:"


class Notification(db.Model):  # type: ignore[name-defined]
    """What the host SaaS asked us to tell one member."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key", name="uq_notifications_idempotency"),
        ForeignKeyConstraint(
            ["recipient_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
        Index("ix_notifications_org_id", "organization_id", "id"),
        Index("ix_notifications_recipient", "recipient_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    recipient_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    #: Sensitive content waits until the member confirmed an automatic link.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The category it was sent in (None: sent before categories, read as the default one).
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_categories.id", ondelete="SET NULL")
    )
    #: Time-critical: goes out at once, past quiet hours and digests (migration 0014).
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The host asks the member to confirm they read it (a 「確認しました」 button in the DM).
    ack_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="notification", order_by="Delivery.id"
    )


class Delivery(db.Model):  # type: ignore[name-defined]
    """One channel attempt for one notification: the outbox row a worker claims with a lease."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # One row per channel per notification: the e-mail fallback can only ever be made once.
        UniqueConstraint("notification_id", "channel", name="uq_deliveries_notification_channel"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_org_id", "organization_id", "id"),
        Index("ix_deliveries_lease", "state", "locked_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    #: The channel's key in ``channels.transports``: "email", "slack", "chatwork", "teams"…
    #: (checked when set, see ``transports/__init__.py``).
    channel: Mapped[str] = mapped_column(String(16))
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    chat_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("chat_accounts.id", ondelete="SET NULL")
    )
    state: Mapped[DeliveryState] = mapped_column(
        string_enum(DeliveryState), default=DeliveryState.PENDING
    )
    #: Why this channel was chosen or skipped ("not_linked", "fallback:token_revoked", …).
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: How often a worker stopped mid-send and the lease ran out (counted by the claim).
    lease_expiries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    notification: Mapped[Notification] = relationship(back_populates="deliveries")


class PacingBucket(db.Model):  # type: ignore[name-defined]
    """A token bucket shared by every worker: one per provider and workspace/token.

    Workers take a token before each provider call, so the fleet as a whole stays under the
    provider's limit instead of collecting 429s. ``blocked_until`` holds a provider's
    ``Retry-After`` for the whole workspace, not just for the delivery that received it.
    """

    __tablename__ = "pacing_buckets"

    #: "<provider>:<workspace or token id>", e.g. "slack:T0DEMO0001".
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A learned budget's state (``notifications/ceiling.py``); NULL for a fixed budget.
    learned: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApiKey(db.Model):  # type: ignore[name-defined]
    """An organization's key for the notifications API; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    #: First characters of the key, shown in lists ("cc_live_AbCd…").
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ActionToken(db.Model):  # type: ignore[name-defined]
    """A signed, single-use link to a notification's choices, for a DM without buttons
    (Chatwork): 「確認しました」 and, on the first DM of an automatic link, 「はい、私です」 /
    「私ではありません」 on a portal page (``notifications/actions.py``, migration 0018).

    The link carries this row's id signed with the app's key; the row says whether it was
    spent (``used_at``) or replaced by a newer link for the same notification and account.
    """

    __tablename__ = "action_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
        Index("ix_action_tokens_notification", "notification_id", "chat_account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    #: The recipient: the only member the page acts for.
    user_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    chat_account_id: Mapped[int] = mapped_column(ForeignKey("chat_accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
