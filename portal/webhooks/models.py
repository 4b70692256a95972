"""Webhook endpoints, the events they subscribe to, and the outbox that delivers them.

An event (:class:`WebhookEvent`) is written in the transaction of the change it reports, with one
:class:`WebhookDelivery` per subscribed endpoint: the outbox row a worker claims with a lease,
exactly like a notification's delivery (``portal.outbox``). Every HTTP attempt leaves a
:class:`WebhookAttempt` in the endpoint's log, with the receiver's status and at most 1 KB of its
answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import EncryptedJSON, seal, unseal
from ..database import UTCDateTime, string_enum, utcnow
from ..extensions import db
from ..notifications.models import DeliveryState

#: Longest receiver answer kept in the attempt log.
RESPONSE_KEPT = 1024


class WebhookEndpoint(db.Model):  # type: ignore[name-defined]
    """Where one organization wants its events, and the secret they are signed with."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org", "organization_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    #: The event types it receives (keys of ``webhooks.events.TYPES``).
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Opt-in: notification events carry the title and body (off: ids and states only).
    include_content: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: ``whsec_…``, encrypted at rest; shown to the admin once, when made or rotated.
    secret: Mapped[Any | None] = mapped_column(EncryptedJSON)
    #: The secret before the last rotation: it signs too until ``previous_secret_until``.
    previous_secret: Mapped[Any | None] = mapped_column(EncryptedJSON)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: Why it is off: "admin" (turned off), "gone" (the receiver answered 410).
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def _owner(self) -> str:
        # Sealed to this row: a ciphertext copied onto another endpoint does not decrypt.
        assert self.id is not None, "flush the endpoint before giving it a secret"
        return f"webhook_endpoint:{self.id}:org:{self.organization_id}"

    def set_secret(self, secret: str, *, keep_previous_until: datetime | None = None) -> None:
        """Store ``secret``; with ``keep_previous_until`` the current one keeps signing until
        then (a rotation's overlap), else any previous secret is dropped."""
        if keep_previous_until is not None and self.secret is not None:
            self.previous_secret = self.secret
            self.previous_secret_until = keep_previous_until
        else:
            self.previous_secret = None
            self.previous_secret_until = None
        self.secret = seal(secret, self._owner())

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now, newest first: the current one, and the previous during
        its overlap."""
        found = [unseal(self.secret, self._owner())]
        until = self.previous_secret_until
        if self.previous_secret is not None and until is not None and until > now:
            found.append(unseal(self.previous_secret, self._owner()))
        return found


class WebhookEvent(db.Model):  # type: ignore[name-defined]
    """Something that happened, as sent: its ``message_id`` is the ``webhook-id`` header, the
    same on every retry and to every endpoint (the receiver's idempotency key)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_org", "organization_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    #: The JSON body sent, as built when the event happened (``{"type", "timestamp", "data"}``).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(db.Model):  # type: ignore[name-defined]
    """One event to one endpoint: the outbox row (same lease columns as ``deliveries``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_lease", "state", "locked_until"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(
        string_enum(DeliveryState), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_expiries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(db.Model):  # type: ignore[name-defined]
    """One HTTP request of one webhook delivery, for the endpoint's attempt log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    #: The receiver's HTTP status; None when no answer came (timeout, refused, unsafe address).
    status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(String(RESPONSE_KEPT))
    error: Mapped[str | None] = mapped_column(String(300))
