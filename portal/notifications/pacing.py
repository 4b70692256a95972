"""Shared pacing: a token bucket per provider and workspace/token, kept in the database.

Every worker process takes a token before each provider call, so the fleet as a whole stays
under the provider's limit instead of collecting 429s; a 429's ``Retry-After`` blocks the whole
bucket (that workspace), not just one delivery. One organization's buckets never slow another's
(DL-05): buckets are keyed by workspace/token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..database import commit_keeping_loaded, utcnow, write_section
from ..extensions import db
from ..integrations.providers.base import PacingBudget
from . import ceiling
from .models import PacingBucket

_known: set[tuple[str, str]] = set()  # (database url, key) rows this process has seen exist


def _ensure(key: str, burst: float) -> None:
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


#: Buckets of budgets with ``shared=False``, by (database, key): (tokens, monotonic time).
_local: dict[tuple[str, str], tuple[float, float]] = {}
#: Past this many local buckets, the full ones (idle long enough to have refilled) are dropped.
LOCAL_BUCKETS = 10_000


def forget_local_state() -> None:
    """Drop what this process remembers of the buckets (reserved tokens, rows known to exist).

    For a process whose database was emptied under it (the test suite truncates every table
    between tests on PostgreSQL): reserved tokens of a bucket that no longer exists would
    otherwise be spent against its successor of the same key.
    """
    with _reserved_lock:
        _reserved.clear()
        _local.clear()
    _known.clear()


#: A wait shorter than this is slept through by :func:`await_tokens`; a longer one is returned,
#: so the caller reschedules the send instead of holding a worker thread.
MAX_INLINE_WAIT = 2.0
_bucket_locks: dict[str, threading.Lock] = {}
_bucket_locks_guard = threading.Lock()


def await_tokens(budgets: Sequence[PacingBudget]) -> float:
    """Take a token from each of ``budgets`` in turn, sleeping through short waits; return a
    longer wait (the send must wait that long), or 0 once every token is taken.

    ``budgets`` come widest first (the workspace, then the member's channel); they are taken
    narrowest first. A token taken from one budget is spent even when the next says wait: the
    fleet stays under every limit, at the cost of one unused token, and that token is better a
    busy member's than one the workspace's learned count has already recorded. Within one
    process only one thread at a time polls a given bucket: the others queue on a local lock
    instead of hammering the shared row (on SQLite every poll is a write).
    """
    for budget in reversed(budgets):
        if not budget.shared:
            while (wait := _take_local(budget)) > 0:
                if wait > MAX_INLINE_WAIT:
                    return wait
                time.sleep(wait)
            continue
        with _bucket_locks_guard:
            lock = _bucket_locks.setdefault(budget.key, threading.Lock())
        with lock:
            while (wait := take(budget)) > 0:
                if wait > MAX_INLINE_WAIT:
                    return wait
                time.sleep(wait)
    return 0.0


def _take_local(budget: PacingBudget) -> float:
    """Take one token from this process's bucket of an unshared budget; 0, or seconds to wait."""
    slot = (str(db.engine.url), budget.key)
    moment = time.monotonic()
    with _reserved_lock:
        tokens, at = _local.get(slot, (float(budget.burst), moment))
        tokens = min(float(budget.burst), tokens + (moment - at) * budget.rate)
        if tokens < 1.0:
            _local[slot] = (tokens, moment)
            return (1.0 - tokens) / budget.rate
        _local[slot] = (tokens - 1.0, moment)
        if len(_local) > LOCAL_BUCKETS:
            idle = [
                k for k, (_t, when) in _local.items() if moment - when > budget.burst / budget.rate
            ]
            for key in idle:
                del _local[key]
        return 0.0


def take(budget: PacingBudget, now: datetime | None = None) -> float:
    """Take one token, from this process's reservation when it has one; see :func:`take_batch`.
    A learned budget counts reserved tokens as sent: those a reservation leaves unused when it
    expires are handed back, so the count keeps mirroring the provider's."""
    slot = (str(db.engine.url), budget.key)
    with _reserved_lock:
        count, expires = _reserved.pop(slot, (0, 0.0))
        if count > 0 and time.monotonic() < expires:
            _reserved[slot] = (count - 1, expires)
            return 0.0
    wait, got = take_batch(budget, now or utcnow(), unused=count)
    if got > 1:
        with _reserved_lock:
            _reserved[slot] = (got - 1, time.monotonic() + RESERVE_SECONDS)
    return wait


def _wanted(rate: float, burst: float) -> int:
    """How many tokens to take at once: what this process is likely to use within
    :data:`RESERVE_SECONDS`, so a fast budget costs one database round trip per several sends."""
    return max(1, min(int(burst), int(rate * RESERVE_SECONDS)))


def _locked(key: str, burst: float) -> PacingBucket:
    """The bucket's row, created if missing, locked until the caller commits.

    On PostgreSQL the row is locked with ``FOR UPDATE``; on SQLite a no-op UPDATE takes the
    database write lock first, which serialises takers.
    """
    _ensure(key, burst)
    if db.engine.dialect.name == "sqlite":
        db.session.execute(
            update(PacingBucket).where(PacingBucket.key == key).values(key=PacingBucket.key)
        )
        bucket = db.session.get(PacingBucket, key, populate_existing=True)
    else:
        bucket = db.session.scalar(
            select(PacingBucket)
            .where(PacingBucket.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    if bucket is None:  # the row went away (tables truncated): create it and start again
        _known.discard((str(db.engine.url), key))
        db.session.rollback()
        return _locked(key, burst)
    return bucket


def take_batch(budget: PacingBudget, now: datetime, unused: int = 0) -> tuple[float, int]:
    """Take tokens in one short transaction: ``(0, how many)`` when taken, else ``(seconds to
    wait, 0)`` with nothing taken. ``unused``: tokens of an earlier batch that were not sent."""
    with write_section():
        return _take(budget, now, unused)


def _take(budget: PacingBudget, now: datetime, unused: int) -> tuple[float, int]:
    bucket = _locked(budget.key, budget.burst)
    try:
        if bucket.blocked_until and bucket.blocked_until > now:
            return (bucket.blocked_until - now).total_seconds(), 0
        elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
        if budget.window is None:
            tokens = min(float(budget.burst), bucket.tokens + elapsed * budget.rate)
            if tokens >= 1.0:
                got = min(_wanted(budget.rate, budget.burst), int(tokens))
                bucket.tokens = tokens - got
                bucket.refilled_at = now
                return 0.0, got
            return (1.0 - tokens) / budget.rate, 0
        return _take_learned(bucket, budget, budget.window, now, elapsed, unused)
    finally:
        commit_keeping_loaded()  # the delivery being sent stays as the dispatcher loaded it


def _take_learned(
    bucket: PacingBucket,
    budget: PacingBudget,
    window: float,
    now: datetime,
    elapsed: float,
    unused: int,
) -> tuple[float, int]:
    """A learned budget: the rate and the sliding-window count come from the row's state."""
    moment = now.timestamp()
    state = ceiling.Learned.load(bucket.learned, budget.rate, moment)
    ceiling.release(state, unused)
    ceiling.adapt(state, window, moment)
    burst = max(budget.burst, math.ceil(state.rate * RESERVE_SECONDS))
    tokens = min(float(burst), bucket.tokens + elapsed * state.rate)
    space = ceiling.room(state, window, moment)
    bucket.tokens, bucket.refilled_at = tokens, now
    if tokens >= 1.0 and space >= 1.0:
        got = int(min(_wanted(state.rate, burst), tokens, space))
        bucket.tokens = tokens - got
        ceiling.record(state, window, moment, got)
        bucket.learned = state.dump()
        return 0.0, got
    state.waited = True
    bucket.learned = state.dump()
    if space < 1.0:
        return ceiling.frees_in(state, window, moment), 0
    return (1.0 - tokens) / state.rate, 0


def limited(budget: PacingBudget, seconds: float, now: datetime | None = None) -> None:
    """The provider answered 429: nobody uses this bucket for ``seconds`` (Retry-After), and a
    learned budget drops below what got through before it. The 429s of sends that were already
    on their way when the first one came are one event: they only extend the block. The refused
    send and the tokens this process had reserved are uncounted: the provider never counted them.
    """
    now = now or utcnow()
    until = now + timedelta(seconds=seconds)
    with _reserved_lock:
        # Tokens reserved before the 429 are void too.
        unused, _expires = _reserved.pop((str(db.engine.url), budget.key), (0, 0.0))
    with write_section():
        bucket = _locked(budget.key, 1)
        blocked = bucket.blocked_until is not None and bucket.blocked_until > now
        if budget.window is not None:
            state = ceiling.Learned.load(bucket.learned, budget.rate, now.timestamp())
            ceiling.release(state, 1 + unused)
            if not blocked:
                ceiling.limited(state, budget.window, now.timestamp())
            bucket.learned = state.dump()
        if not blocked or bucket.blocked_until < until:  # type: ignore[operator]
            bucket.blocked_until = until
        bucket.tokens = 0.0
        commit_keeping_loaded()


def block(key: str, seconds: float) -> None:
    """Nobody uses the fixed bucket ``key`` for ``seconds``; see :func:`limited`."""
    limited(PacingBudget(key, 1.0), seconds)
