"""Bulk data the page and load benchmarks share: one organization, its members and staff, and
a history of audit events, inserted in large batches (minutes of ORM work otherwise).

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
