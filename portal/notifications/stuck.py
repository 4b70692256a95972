"""The stuck-delivery guard: rows that keep failing the same unexpected way, shown to people.

Two kinds of trouble no provider error explains (issue 12):

- **unexpected errors** — a send raised something no handler expected. The dispatcher counts
  each as an attempt (``unexpected_error``), so it ends dead with its fallback; meanwhile the
  delivery log and ``/support/health`` group these rows by their error, so one bug shows as
  "N deliveries keep failing with ValueError: …", not as N unrelated lines.
- **expired leases** — the worker stopped mid-send (killed, crashed outside Python). The claim
  counts each (``lease_expiries``); every minute the worker's sweep ends rows whose attempts
  are spent (``dispatcher.end_exhausted_leases``) and :func:`alert_abandoned` e-mails the
  organization's admins once per delivery found abandoned more than
  ``STUCK_LEASE_ALERT_AFTER`` times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..accounts.models import Organization
from ..audit import service as audit
from ..audit.models import AuditEvent
from ..database import utcnow
from ..extensions import db
from . import mail
from .models import LEASE_EXPIRED, UNEXPECTED_ERROR, Delivery, DeliveryState

log = logging.getLogger(__name__)

#: Codes of failures that no provider reported: our own or a library's.
CODES = (UNEXPECTED_ERROR, LEASE_EXPIRED)
#: How far back the summaries look.
WINDOW = timedelta(days=7)
ACTIVE = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING)


@dataclass(frozen=True)
class StuckGroup:
    """Deliveries that failed with one and the same unexpected error."""

    code: str
    error: str
    count: int
    active: int
    dead: int
    organization_id: int


def summary(organization_id: int | None = None, limit: int = 10) -> list[StuckGroup]:
    """Groups of recent deliveries failing the same unexpected way, largest first."""
    active = func.sum(func.cast(Delivery.state.in_(ACTIVE), db.Integer))
    dead = func.sum(func.cast(Delivery.state == DeliveryState.DEAD, db.Integer))
    stmt = (
        select(
            Delivery.last_error_code,
            Delivery.last_error,
            Delivery.organization_id,
            func.count(),
            active,
            dead,
        )
        .where(
            Delivery.last_error_code.in_(CODES),
            Delivery.state.in_((*ACTIVE, DeliveryState.DEAD)),
            Delivery.updated_at >= utcnow() - WINDOW,
        )
        .group_by(Delivery.last_error_code, Delivery.last_error, Delivery.organization_id)
        .order_by(func.count().desc())
        .limit(limit)
    )
    if organization_id is not None:
        stmt = stmt.where(Delivery.organization_id == organization_id)
    return [
        StuckGroup(code or "", error or "", count, int(on or 0), int(off or 0), org)
        for code, error, org, count, on, off in db.session.execute(stmt)
    ]


def alert_abandoned() -> int:
    """Alert admins, once per delivery, about deliveries abandoned mid-send more than
    ``STUCK_LEASE_ALERT_AFTER`` times (audited as ``delivery.stuck``). Returns how many."""
    threshold = int(current_app.config.get("STUCK_LEASE_ALERT_AFTER", 3))
    already = select(AuditEvent.target_id).where(AuditEvent.action == "delivery.stuck")
    rows = db.session.scalars(
        select(Delivery)
        .where(
            Delivery.lease_expiries > threshold,
            func.cast(Delivery.id, db.String).not_in(already),
        )
        .order_by(Delivery.id)
        .limit(500)
    ).all()
    by_organization: dict[int, list[Delivery]] = {}
    for delivery in rows:
        audit.record(
            "delivery.stuck",
            organization=db.session.get(Organization, delivery.organization_id),
            actor=None,
            target=("delivery", delivery.id, None),
            data={"lease_expiries": delivery.lease_expiries, "state": delivery.state.value},
        )
        by_organization.setdefault(delivery.organization_id, []).append(delivery)
    db.session.commit()
    for organization_id, deliveries in by_organization.items():
        _email(organization_id, deliveries)
    return len(rows)


def _email(organization_id: int, deliveries: list[Delivery]) -> None:
    url = mail.external_url("notifications.deliveries")

    def context(_admin: Any) -> dict[str, Any]:
        return {"count": len(deliveries), "ids": [d.id for d in deliveries][:20], "url": url}

    mail.email_admins(organization_id, "delivery_stuck", context)
