"""Shared pacing: a token bucket per provider and workspace/token, kept in the database.

Every worker process takes a token before each provider call, so the fleet as a whole stays
under the provider's limit instead of collecting 429s; a 429's ``Retry-After`` blocks the whole
bucket (that workspace), not just one delivery. One organization's buckets never slow another's
(DL-05): buckets are keyed by workspace/token.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..database import utcnow
from ..extensions import db
from ..integrations.providers.base import PacingBudget
from .models import PacingBucket


def _ensure(key: str, burst: int) -> None:
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(PacingBucket)
        .values(key=key, tokens=float(burst), refilled_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )


def take(budget: PacingBudget, now: datetime | None = None) -> float:
    """Take one token; return 0 when taken, else the seconds to wait (nothing taken).

    Runs in its own short transaction. On PostgreSQL the row is locked with ``FOR UPDATE``; on
    SQLite a no-op UPDATE takes the database write lock first, which serialises takers.
    """
    now = now or utcnow()
    _ensure(budget.key, budget.burst)
    if db.engine.dialect.name == "sqlite":
        db.session.execute(
            update(PacingBucket).where(PacingBucket.key == budget.key).values(key=PacingBucket.key)
        )
        bucket = db.session.get(PacingBucket, budget.key, populate_existing=True)
    else:
        bucket = db.session.scalar(
            select(PacingBucket)
            .where(PacingBucket.key == budget.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    assert bucket is not None
    try:
        if bucket.blocked_until and bucket.blocked_until > now:
            return (bucket.blocked_until - now).total_seconds()
        elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
        tokens = min(float(budget.burst), bucket.tokens + elapsed * budget.rate)
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            bucket.refilled_at = now
            return 0.0
        return (1.0 - tokens) / budget.rate
    finally:
        db.session.commit()


def block(key: str, seconds: float) -> None:
    """The provider said "wait": nobody uses this bucket for ``seconds`` (Retry-After)."""
    until = utcnow() + timedelta(seconds=seconds)
    _ensure(key, 1)
    db.session.execute(
        update(PacingBucket)
        .where(PacingBucket.key == key)
        .where((PacingBucket.blocked_until.is_(None)) | (PacingBucket.blocked_until < until))
        .values(blocked_until=until, tokens=0.0)
    )
    db.session.commit()
