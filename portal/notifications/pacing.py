"""Shared pacing: a token bucket per provider and workspace/token, kept in the database.

Every worker process takes a token before each provider call, so the fleet as a whole stays
under the provider's limit instead of collecting 429s; a 429's ``Retry-After`` blocks the whole
bucket (that workspace), not just one delivery. One organization's buckets never slow another's
(DL-05): buckets are keyed by workspace/token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..database import utcnow, write_section
from ..extensions import db
from ..integrations.providers.base import PacingBudget
from .models import PacingBucket

_known: set[tuple[str, str]] = set()  # (database url, key) rows this process has seen exist


def _ensure(key: str, burst: int) -> None:
    marker = (str(db.engine.url), key)
    if marker in _known:
        return
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(PacingBucket)
        .values(key=key, tokens=float(burst), refilled_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    _known.add(marker)


#: Tokens this process reserved from a shared bucket and has not used yet, by (database, key):
#: (count, expiry). The database is part of the key like in ``_known``: one process serving two
#: databases (the tests do) must not spend one database's reservation in the other.
_reserved: dict[tuple[str, str], tuple[int, float]] = {}
_reserved_lock = threading.Lock()
#: How far ahead a process may reserve: a fast budget costs one database round trip per
#: this much of its rate instead of one per message.
RESERVE_SECONDS = 0.2


def forget_local_state() -> None:
    """Drop what this process remembers of the buckets (reserved tokens, rows known to exist).

    For a process whose database was emptied under it (the test suite truncates every table
    between tests on PostgreSQL): reserved tokens of a bucket that no longer exists would
    otherwise be spent against its successor of the same key.
    """
    with _reserved_lock:
        _reserved.clear()
    _known.clear()


#: A wait shorter than this is slept through by :func:`await_tokens`; a longer one is returned,
#: so the caller reschedules the send instead of holding a worker thread.
MAX_INLINE_WAIT = 2.0
_bucket_locks: dict[str, threading.Lock] = {}
_bucket_locks_guard = threading.Lock()


def await_tokens(budgets: Sequence[PacingBudget]) -> float:
    """Take a token from each of ``budgets`` in turn, sleeping through short waits; return a
    longer wait (the send must wait that long), or 0 once every token is taken.

    A token taken from an earlier budget is spent even when a later one says wait: the fleet
    stays under every limit, at the cost of one unused token. Within one process only one
    thread at a time polls a given bucket: the others queue on a local lock instead of
    hammering the shared row (on SQLite every poll is a write).
    """
    for budget in budgets:
        with _bucket_locks_guard:
            lock = _bucket_locks.setdefault(budget.key, threading.Lock())
        with lock:
            while (wait := take(budget)) > 0:
                if wait > MAX_INLINE_WAIT:
                    return wait
                time.sleep(wait)
    return 0.0


def take(budget: PacingBudget, now: datetime | None = None) -> float:
    """Take one token, from this process's reservation when it has one; see :func:`_take`."""
    slot = (str(db.engine.url), budget.key)
    with _reserved_lock:
        count, expires = _reserved.get(slot, (0, 0.0))
        if count > 0 and time.monotonic() < expires:
            _reserved[slot] = (count - 1, expires)
            return 0.0
    wanted = max(1, min(budget.burst, int(budget.rate * RESERVE_SECONDS)))
    wait, got = _take_many(budget, wanted, now)
    if got > 1:
        with _reserved_lock:
            _reserved[slot] = (got - 1, time.monotonic() + RESERVE_SECONDS)
    return wait


def _take_many(budget: PacingBudget, wanted: int, now: datetime | None) -> tuple[float, int]:
    """Take one token; return 0 when taken, else the seconds to wait (nothing taken).

    Runs in its own short transaction. On PostgreSQL the row is locked with ``FOR UPDATE``; on
    SQLite a no-op UPDATE takes the database write lock first, which serialises takers.
    """
    now = now or utcnow()
    with write_section():
        return _take(budget, wanted, now)


def _take(budget: PacingBudget, wanted: int, now: datetime) -> tuple[float, int]:
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
    if bucket is None:  # the row went away (tables truncated): create it and start again
        _known.discard((str(db.engine.url), budget.key))
        db.session.rollback()
        return _take(budget, wanted, now)
    try:
        if bucket.blocked_until and bucket.blocked_until > now:
            return (bucket.blocked_until - now).total_seconds(), 0
        elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
        tokens = min(float(budget.burst), bucket.tokens + elapsed * budget.rate)
        if tokens >= 1.0:
            got = min(wanted, int(tokens))
            bucket.tokens = tokens - got
            bucket.refilled_at = now
            return 0.0, got
        return (1.0 - tokens) / budget.rate, 0
    finally:
        db.session.commit()


def block(key: str, seconds: float) -> None:
    """The provider said "wait": nobody uses this bucket for ``seconds`` (Retry-After)."""
    until = utcnow() + timedelta(seconds=seconds)
    with _reserved_lock:
        # Tokens reserved before the 429 are void too.
        _reserved.pop((str(db.engine.url), key), None)
    with write_section():
        _ensure(key, 1)
        db.session.execute(
            update(PacingBucket)
            .where(PacingBucket.key == key)
            .where((PacingBucket.blocked_until.is_(None)) | (PacingBucket.blocked_until < until))
            .values(blocked_until=until, tokens=0.0)
        )
        db.session.commit()
