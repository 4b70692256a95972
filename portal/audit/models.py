"""The append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime, utcnow
from ..extensions import db


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """Who did what to which object, when, from where. Never updated, never deleted.

    Database triggers (see the initial migration) refuse UPDATE and DELETE, so the rule holds even
    for code that bypasses the ORM.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_id", "organization_id", "id"),
        Index("ix_audit_events_org_action_id", "organization_id", "action", "id"),
        Index("ix_audit_events_actor_id", "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: None for events outside any organization (support sign-in, system jobs).
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    #: None when the system acted (worker, webhook).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Kept as written, so the log stays readable if the user is renamed or deactivated.
    actor_label: Mapped[str | None] = mapped_column(String(254))
    #: A registered key from ``audit/events.py`` ("integration.connected").
    action: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    target_label: Mapped[str | None] = mapped_column(String(254))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(64))
