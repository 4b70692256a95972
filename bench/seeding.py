"""Bulk data the benchmarks share: one organization, its members and staff, a history of audit
events, and queued deliveries, inserted in large batches (minutes of ORM work otherwise).

Call inside an application context on a migrated database; commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import insert
from werkzeug.security import generate_password_hash

import demodata
from portal.accounts.models import Organization, User
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import Delivery, DeliveryState, Notification

BATCH = 10_000


def seed_organization(
    *,
    members: int,
    events: int,
    password: str,
    admins: Sequence[str],
    support: Sequence[str] = (),
    days: int = 30,
    slug: str = "bench",
) -> Organization:
    """``members`` members (demodata's Japanese names on bench.example), the ``admins`` and
    ``support`` staff by e-mail, and ``events`` audit events spread over the last ``days``."""
    organization = Organization(slug=slug, name="ベンチ株式会社")
    db.session.add(organization)
    db.session.flush()
    # A cheap hash: the benchmarks log in often and measure pages, not password hashing.
    base = {
        "password_hash": generate_password_hash(password, method="pbkdf2:sha256:1000"),
        "is_active": True,
        "created_at": utcnow(),
    }
    people = [
        {**base, "organization_id": organization.id, "role": "member"}
        | {"email": p.email, "name": p.name}
        for p in demodata.members(members, "bench.example")
    ]
    people += [
        {**base, "organization_id": organization.id, "role": "admin"}
        | {"email": email, "name": f"管理 {n:02d}"}
        for n, email in enumerate(admins)
    ]
    people += [
        {**base, "organization_id": None, "role": "support"}
        | {"email": email, "name": f"サポート {n:02d}"}
        for n, email in enumerate(support)
    ]
    db.session.execute(insert(User), people)
    start = utcnow() - timedelta(days=days)
    step = timedelta(days=days) / max(1, events)
    batch: list[dict[str, Any]] = []
    for n in range(events):
        member = f"member{n % max(1, members):05d}@bench.example"
        batch.append(
            {
                "occurred_at": start + n * step,
                "organization_id": organization.id,
                "actor_label": member,
                "action": ("user.logged_in", "link.created", "integration.updated")[n % 3],
                "kind": "other",
                "target_type": "user",
                "target_id": str(n % max(1, members)),
                "target_label": member,
            }
        )
        if len(batch) == BATCH:
            db.session.execute(insert(AuditEvent), batch)
            batch.clear()
    if batch:
        db.session.execute(insert(AuditEvent), batch)
    db.session.commit()
    return organization


def queue_deliveries(
    organization_id: int,
    users: Sequence[int],
    count: int,
    channel: str = "email",
    links: dict[int, tuple[int, int]] | None = None,
    chunk: int = 2_000,
) -> None:
    """``count`` notifications to ``users`` in turn, each with one pending delivery on
    ``channel`` (to the linked account in ``links``: user id -> (integration id, account id)).

    Committed every ``chunk`` rows: short transactions, so a worker already running can claim.
    """
    now = utcnow()
    for first in range(0, count, chunk):
        numbers = range(first, min(count, first + chunk))
        ids = (
            db.session.execute(
                insert(Notification).returning(Notification.id),
                [
                    {
                        "organization_id": organization_id,
                        "recipient_id": users[n % len(users)],
                        "title": f"通知 {n}",
                        "body": "本文",
                        "created_at": now,
                        "sensitive": False,
                    }
                    for n in numbers
                ],
            )
            .scalars()
            .all()
        )
        rows = []
        for n, notification_id in zip(numbers, ids, strict=True):
            integration_id, account_id = (links or {}).get(users[n % len(users)], (None, None))
            rows.append(
                {
                    "notification_id": notification_id,
                    "organization_id": organization_id,
                    "channel": channel,
                    "integration_id": integration_id,
                    "chat_account_id": account_id,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        db.session.execute(insert(Delivery), rows)
        db.session.commit()
