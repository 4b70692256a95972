"""The lease/claim machinery shared by every outbox table (notification deliveries, webhooks).

A row is claimed by setting ``state=sending``, ``locked_by`` and ``locked_until`` and counting
the attempt in one statement; a worker killed mid-send leaves a lease that expires, and the row
is claimed again (DL-09) until its attempts are spent. On PostgreSQL concurrent workers claim
with ``FOR UPDATE SKIP LOCKED`` so no row is handed to two of them (DL-11); on SQLite the
claiming UPDATE is one statement under the database write lock. Outcomes are written only
while the worker still holds the lease (:meth:`Outbox.finish`).

:func:`run_pipeline` keeps ``concurrency`` sends in flight, claiming more as each finishes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any, Generic, TypeVar

from flask import Flask
from sqlalchemy import case, literal, or_, select, update

from .database import utcnow, write_section
from .extensions import db
from .notifications.models import LEASE_EXPIRED, DeliveryState

log = logging.getLogger(__name__)

T = TypeVar("T")


class Outbox:
    """One table of rows to send, with the lease columns ``state``, ``attempts``,
    ``lease_expiries``, ``next_attempt_at``, ``locked_by``, ``locked_until``,
    ``last_error_code``, ``last_error`` and ``updated_at``."""

    def __init__(self, model: Any, max_attempts: int) -> None:
        self.model = model
        self.max_attempts = max_attempts

    def due_filter(self, now: Any) -> Any:
        """Rows a worker may claim: due pending/retrying rows, and rows whose lease ran out
        while attempts remain (the rest are ended by :meth:`end_exhausted_leases`)."""
        m = self.model
        return or_(
            (m.state.in_([DeliveryState.PENDING, DeliveryState.RETRYING]))
            & (m.next_attempt_at <= now),
            (m.state == DeliveryState.SENDING)
            & (m.locked_until < now)
            & (m.attempts < self.max_attempts),
        )

    def claim(self, limit: int, worker: str, lease_seconds: float) -> list[int]:
        """Claim up to ``limit`` due rows for ``worker``; return their ids (committed)."""
        m = self.model
        now = utcnow()
        candidates = (
            select(m.id).where(self.due_filter(now)).order_by(m.next_attempt_at).limit(limit)
        )
        if db.engine.dialect.name == "postgresql":
            # A CTE is evaluated once, so the rows it locks are exactly the rows updated. (As an
            # IN-subquery, PostgreSQL may rescan it per row and hand rows to two workers.)
            picked = candidates.with_for_update(skip_locked=True).cte("picked")
            target = m.id == picked.c.id
        else:
            # SQLite runs the whole UPDATE under the database write lock: one claimer at a time.
            target = m.id.in_(candidates.scalar_subquery())
        statement = (
            update(m)
            .where(target)
            .where(self.due_filter(now))
            .values(
                state=DeliveryState.SENDING,
                locked_by=worker,
                locked_until=now + timedelta(seconds=lease_seconds),
                attempts=m.attempts + 1,
                # A row still ``sending`` here was left by a worker that stopped mid-send.
                lease_expiries=m.lease_expiries
                + case((m.state == DeliveryState.SENDING, 1), else_=0),
                last_error_code=case(
                    (m.state == DeliveryState.SENDING, LEASE_EXPIRED),
                    else_=m.last_error_code,
                ),
                updated_at=now,
            )
            .returning(m.id)
            .execution_options(synchronize_session=False)
        )
        with write_section():
            ids = list(db.session.scalars(statement))
            db.session.commit()
        return ids

    def end_exhausted_leases(self, also: Callable[[list[int]], None] | None = None) -> list[int]:
        """End every row whose worker died mid-send on its last attempt (``dead``).

        A send that kills its worker each time (a crash in a C library, the OOM killer)
        leaves nothing to catch; the claim counts each try, and once the count is spent the
        row is ended here instead of being claimed again. Returns the ids ended; ``also(ids)``
        adds what must commit with them.
        """
        m = self.model
        now = utcnow()
        with write_section():
            ids = list(
                db.session.scalars(
                    update(m)
                    .where(
                        m.state == DeliveryState.SENDING,
                        m.locked_until < now,
                        m.attempts >= self.max_attempts,
                    )
                    .values(
                        state=DeliveryState.DEAD,
                        locked_by=None,
                        locked_until=None,
                        last_error_code=LEASE_EXPIRED,
                        last_error="the worker stopped during every attempt",
                        updated_at=now,
                    )
                    .returning(m.id)
                    .execution_options(synchronize_session=False)
                )
            )
            if ids and also is not None:
                also(ids)
            db.session.commit()
        return ids

    def rearm(self, row: Any) -> dict[str, Any]:
        """Make a dead or failed row due again — the same row, so nothing already sent repeats —
        and return what it was (for the audit record); ValueError for any other state. The
        caller commits."""
        if row.state not in (DeliveryState.DEAD, DeliveryState.FAILED):
            raise ValueError("only dead or failed rows can be sent again")
        before = {"state": row.state.value, "attempts": row.attempts}
        row.state = DeliveryState.PENDING
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.locked_by = None
        row.locked_until = None
        return before

    def finish(
        self, row_id: int, worker: str, *, also: Callable[[], None] | None = None, **values: Any
    ) -> bool:
        """Write the outcome only if ``worker`` still holds the lease, and release it.

        ``also`` adds what must commit with the outcome (the webhook event reporting it); it
        runs only when the lease was still held, inside the same transaction.
        """
        after = (lambda _held: also()) if also is not None else None
        return bool(self.finish_many(worker, {row_id: {}}, also=after, **values))

    def finish_many(
        self,
        worker: str,
        rows: dict[int, dict[str, Any]],
        *,
        also: Callable[[list[int]], None] | None = None,
        **shared: Any,
    ) -> set[int]:
        """:meth:`finish` for many rows in one statement and one commit.

        ``rows`` maps each row id to the values only it takes (its provider message id), all
        with the same keys; ``shared`` holds the values every row takes. Returns the ids whose
        lease ``worker`` still held; ``also(ids)`` adds what must commit with them.
        """
        m = self.model
        columns = m.__table__.c
        if len(rows) == 1:
            (own,) = rows.values()  # one row: its values as they are, no CASE to build
        else:
            # One CASE per column that differs by row; each value bound with its column's type
            # (UTCDateTime stores a timestamp its own way on SQLite).
            own = {
                key: case(
                    {row: literal(values[key], columns[key].type) for row, values in rows.items()},
                    value=m.id,
                )
                for key in {key for values in rows.values() for key in values}
            }
        shared.setdefault("locked_by", None)
        shared.setdefault("locked_until", None)
        statement = (
            update(m)
            .where(m.id.in_(list(rows)), m.locked_by == worker, m.state == DeliveryState.SENDING)
            .values(updated_at=utcnow(), **shared, **own)
            .returning(m.id)
            .execution_options(synchronize_session=False)
        )
        with write_section():
            held = set(db.session.scalars(statement))
            if held and also is not None:
                also(sorted(held))
            db.session.commit()
        for row_id in rows.keys() - held:
            log.warning("%s %s: lease lost before the outcome was written", m.__tablename__, row_id)
        return held


class GroupCommit(Generic[T]):
    """Items that many threads write, written together: each thread queues its own, and the
    first to get the writer's lock writes every queued item in one transaction.

    Under load, sends finish while a transaction commits, and the next writer takes all of
    them: one statement and one commit for many rows instead of one each (the commit and the
    statement's overhead were the biggest share of a delivery's CPU). A thread alone writes its
    item at once, and no thread returns before its item is written.
    """

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._queued: list[_Queued[T]] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def submit(self, item: T) -> None:
        """Return once ``item`` is written; raise what the write of its group raised."""
        mine = _Queued(item)
        with self._queue_lock:
            self._queued.append(mine)
        with self._writer:
            if not mine.done:  # no writer took it while this thread waited: write the group
                with self._queue_lock:
                    group, self._queued = self._queued, []
                try:
                    self._write([queued.item for queued in group])
                except Exception as exc:  # every item of the group failed with it
                    for queued in group:
                        queued.error = exc
                finally:
                    for queued in group:
                        queued.done = True
        if mine.error is not None:
            raise mine.error


class _Queued(Generic[T]):
    __slots__ = ("done", "error", "item")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.error: Exception | None = None


def run_pipeline(
    app: Flask,
    claim: Callable[[int], list[int]],
    deliver: Callable[[int], None],
    *,
    concurrency: int,
    batch: int,
    limit: int | None = None,
    name: str = "deliver",
) -> int:
    """Send everything due now, ``concurrency`` at a time; return how many ran.

    A pipeline, not batch-by-batch: as soon as a send finishes another row is claimed, so one
    slow call never holds up the rest of a batch. ``deliver`` runs in an app context and must
    record its own failures; an exception escaping it is logged and the row's lease expires.
    """
    done = 0
    running: set[Future[None]] = set()
    exhausted = False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name) as pool:
        while True:
            room = concurrency * 2 - len(running)
            # Refill in chunks (when half the window is free): one claim per row would cost
            # more than the sends themselves.
            if not exhausted and len(running) <= concurrency and (limit is None or done < limit):
                wanted = min(batch, room) if limit is None else min(batch, room, limit - done)
                ids = claim(wanted)
                exhausted = len(ids) < wanted
                for row_id in ids:
                    running.add(pool.submit(_run_in, app, deliver, row_id))
                done += len(ids)
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED, timeout=1.0)
            if finished and exhausted and (limit is None or done < limit):
                exhausted = False  # a send finished: look again for rows that became due
    return done


def _run_in(app: Flask, deliver: Callable[[int], None], row_id: int) -> None:
    with app.app_context():
        try:
            deliver(row_id)
        except Exception:  # one bad row must not stop the batch; its lease will expire
            log.exception("outbox row %s crashed", row_id)
            db.session.rollback()
