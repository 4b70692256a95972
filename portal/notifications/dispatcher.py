"""The delivery worker's core: claim due deliveries with a lease, send, record the outcome.

At-least-once: a delivery is claimed by setting ``state=sending`` and ``locked_until``; a
worker killed mid-send leaves a lease that expires, and the row is claimed again (DL-09). On
PostgreSQL concurrent workers claim with ``FOR UPDATE SKIP LOCKED`` so no row is handed to two
of them (DL-11); on SQLite the claiming UPDATE is one statement under the database write lock.
Outcomes are written only while this worker still holds the lease.

The send itself is the channel's transport (:mod:`.channels`: e-mail, a chat provider's DM);
it answers with an outcome and this module records it:
- sent → ``sent`` with the provider's message id.
- later (pacing; rate limited → no earlier than ``Retry-After``, the whole workspace's bucket
  blocked too) → ``retrying``; does not count as an attempt.
- retry (5xx, timeout, connection) → ``retrying`` with capped exponential backoff and full
  jitter; after ``MAX_ATTEMPTS`` → ``dead`` (replayable) and the fallback (e-mail).
- failed (revoked token, unknown user) → ``failed`` at once, the fallback once; the chat
  transport has marked the integration for reconnection or flagged the link (DL-07).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import case, or_, select, update

from ..accounts.models import User
from ..database import utcnow, write_section
from ..extensions import db
from ..integrations.models import ChatAccount, Integration
from .backoff import MAX_ATTEMPTS, retry_delay
from .channels import Attempt, Failed, Later, Outcome, Retry, Sent, Transport
from .models import (
    FALLBACK_REASON_PREFIX,
    LEASE_EXPIRED,
    UNEXPECTED_ERROR,
    Delivery,
    DeliveryState,
    Notification,
)
from .transports import transports

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _config(name: str, default: Any) -> Any:
    return current_app.config.get(name, default)


def due_filter(now: Any) -> Any:
    """Rows a worker may claim: due pending/retrying rows, and rows whose lease ran out while
    attempts remain (the rest are ended by :func:`end_exhausted_leases`, never re-sent)."""
    return or_(
        (Delivery.state.in_([DeliveryState.PENDING, DeliveryState.RETRYING]))
        & (Delivery.next_attempt_at <= now),
        (Delivery.state == DeliveryState.SENDING)
        & (Delivery.locked_until < now)
        & (Delivery.attempts < MAX_ATTEMPTS),
    )


def end_exhausted_leases() -> list[int]:
    """End every row whose worker died mid-send on its last attempt: ``dead``, e-mail fallback.

    A send that kills its worker each time (a crash in a C library, the OOM killer) leaves
    nothing to catch; the claim counts each try, and once the count is spent the row is
    ended here instead of being claimed again. Returns the ids ended (the caller alerts).
    """
    now = utcnow()
    with write_section():
        ids = list(
            db.session.scalars(
                update(Delivery)
                .where(
                    Delivery.state == DeliveryState.SENDING,
                    Delivery.locked_until < now,
                    Delivery.attempts >= MAX_ATTEMPTS,
                )
                .values(
                    state=DeliveryState.DEAD,
                    locked_by=None,
                    locked_until=None,
                    last_error_code=LEASE_EXPIRED,
                    last_error="the worker stopped during every attempt",
                    updated_at=now,
                )
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        db.session.commit()
    for delivery in db.session.scalars(select(Delivery).where(Delivery.id.in_(ids))):
        _add_fallback(delivery, LEASE_EXPIRED)
    return ids


def claim(limit: int, worker: str = WORKER_ID) -> list[int]:
    """Claim up to ``limit`` due deliveries for ``worker``; return their ids (committed)."""
    now = utcnow()
    lease = timedelta(seconds=_config("DELIVERY_LEASE_SECONDS", 60))
    candidates = (
        select(Delivery.id).where(due_filter(now)).order_by(Delivery.next_attempt_at).limit(limit)
    )
    if db.engine.dialect.name == "postgresql":
        # A CTE is evaluated once, so the rows it locks are exactly the rows updated. (As an
        # IN-subquery, PostgreSQL may rescan it per row and hand rows to two workers.)
        picked = candidates.with_for_update(skip_locked=True).cte("picked")
        target = Delivery.id == picked.c.id
    else:
        # SQLite runs the whole UPDATE under the database write lock: one claimer at a time.
        target = Delivery.id.in_(candidates.scalar_subquery())
    statement = (
        update(Delivery)
        .where(target)
        .where(due_filter(now))
        .values(
            state=DeliveryState.SENDING,
            locked_by=worker,
            locked_until=now + lease,
            attempts=Delivery.attempts + 1,
            # A row still ``sending`` here was left by a worker that stopped mid-send.
            lease_expiries=Delivery.lease_expiries
            + case((Delivery.state == DeliveryState.SENDING, 1), else_=0),
            last_error_code=case(
                (Delivery.state == DeliveryState.SENDING, LEASE_EXPIRED),
                else_=Delivery.last_error_code,
            ),
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    with write_section():
        ids = list(db.session.scalars(statement))
        db.session.commit()
    return ids


def run_due(limit: int | None = None, worker: str = WORKER_ID) -> int:
    """Send everything due now, ``DELIVERY_CONCURRENCY`` at a time; return how many ran.

    A pipeline, not batch-by-batch: as soon as a send finishes another row is claimed, so one
    slow provider call never holds up the rest of a batch.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    concurrency = int(_config("DELIVERY_CONCURRENCY", 8))
    batch = int(_config("DELIVERY_BATCH", 32))
    done = 0
    running: set[Future[None]] = set()
    exhausted = False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="deliver") as pool:
        while True:
            room = concurrency * 2 - len(running)
            # Refill in chunks (when half the window is free): one claim per row would cost
            # more than the sends themselves.
            if not exhausted and len(running) <= concurrency and (limit is None or done < limit):
                wanted = min(batch, room) if limit is None else min(batch, room, limit - done)
                ids = claim(wanted, worker)
                exhausted = len(ids) < wanted
                for delivery_id in ids:
                    running.add(pool.submit(_deliver_in, app, delivery_id, worker))
                done += len(ids)
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED, timeout=1.0)
            if finished and exhausted and (limit is None or done < limit):
                exhausted = False  # a send finished: look again for rows that became due
            if not finished:
                continue
    return done


def _deliver_in(app: Flask, delivery_id: int, worker: str) -> None:
    with app.app_context():
        try:
            deliver(delivery_id, worker)
        except Exception:  # one bad row must not stop the batch; its lease will expire
            log.exception("delivery %s crashed", delivery_id)
            db.session.rollback()


def deliver(delivery_id: int, worker: str = WORKER_ID) -> None:
    """Send one claimed delivery and record the outcome."""
    # One query for the row, its notification and recipient: this runs for every message.
    row = db.session.execute(
        select(Delivery, Notification, User, Integration, ChatAccount)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(User, User.id == Notification.recipient_id)
        .outerjoin(Integration, Integration.id == Delivery.integration_id)
        .outerjoin(ChatAccount, ChatAccount.id == Delivery.chat_account_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None:
        return
    delivery, notification, recipient, integration, account = row
    if delivery.state is not DeliveryState.SENDING or delivery.locked_by != worker:
        return
    attempt = Attempt(delivery, notification, recipient, integration, account)
    try:
        transport = transports.get(delivery.channel)
        if transport is None:  # its provider is gone from this deployment (DL-14)
            _record(attempt, None, Failed("integration_unavailable"), worker)
        else:
            _record(attempt, transport, transport.send(attempt), worker)
    except Exception as exc:  # any failure at all must end as an attempt
        _record_crash(delivery_id, worker, exc)


def _record(attempt: Attempt, transport: Transport | None, outcome: Outcome, worker: str) -> None:
    """Write what the transport answered (each writer checks the lease)."""
    delivery = attempt.delivery
    match outcome:
        case Sent(message_id=message_id):
            _finish(
                delivery,
                worker,
                state=DeliveryState.SENT,
                provider_message_id=message_id,
                sent_at=utcnow(),
                last_error_code=None,
                last_error=None,
            )
            if transport is not None:
                transport.after_sent(attempt)  # the message went out, lease or not
        case Later(seconds=seconds, code=code, error=error):
            _reschedule(delivery, worker, seconds, code=code, error=error)
        case Retry(code=code, error=error):
            _retry_or_die(delivery, worker, code, error)
        case Failed(code=code, error=error):
            _fail(delivery, worker, code, error)


def _record_crash(delivery_id: int, worker: str, exc: Exception) -> None:
    """An error no handler expected (a template, a library, our own bug) is one attempt.

    Without this the row would stay ``sending`` until its lease ran out and be claimed again
    forever: the claim counts attempts but only outcome handlers act on the count. Here the
    attempt is recorded like a temporary failure, so it is retried with backoff and, after
    ``MAX_ATTEMPTS``, dead with its e-mail fallback and a reason the delivery log explains.
    """
    log.exception("delivery %s: unexpected error in the send", delivery_id)
    db.session.rollback()
    delivery = db.session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.state is not DeliveryState.SENDING:
        return
    detail = f"{type(exc).__name__}: {exc}"
    _retry_or_die(delivery, worker, UNEXPECTED_ERROR, detail)


# --- outcomes ---------------------------------------------------------------------------


def _finish(delivery: Delivery, worker: str, **values: Any) -> bool:
    """Write the outcome only if this worker still holds the lease; release it."""
    values.setdefault("locked_by", None)
    values.setdefault("locked_until", None)
    with write_section():
        result = db.session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery.id,
                Delivery.locked_by == worker,
                Delivery.state == DeliveryState.SENDING,
            )
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        log.warning("delivery %s: lease lost before the outcome was written", delivery.id)
        return False
    return True


def _reschedule(
    delivery: Delivery, worker: str, wait: float, code: str | None = None, error: str | None = None
) -> None:
    """Try later without spending an attempt (pacing, rate limits)."""
    values: dict[str, Any] = {
        "state": DeliveryState.RETRYING,
        "next_attempt_at": utcnow() + timedelta(seconds=wait),
        "attempts": max(0, delivery.attempts - 1),
    }
    if code:
        values.update(last_error_code=code, last_error=(error or code)[:500])
    if _finish(delivery, worker, **values):
        _schedule_wake(delivery.id, wait)


def _retry_or_die(delivery: Delivery, worker: str, code: str, error: str) -> None:
    if delivery.attempts >= MAX_ATTEMPTS:
        if _finish(
            delivery, worker, state=DeliveryState.DEAD, last_error_code=code, last_error=error[:500]
        ):
            _add_fallback(delivery, code)
        return
    wait = retry_delay(delivery.attempts)
    if _finish(
        delivery,
        worker,
        state=DeliveryState.RETRYING,
        next_attempt_at=utcnow() + timedelta(seconds=wait),
        last_error_code=code,
        last_error=error[:500],
    ):
        _schedule_wake(delivery.id, wait)


def _fail(delivery: Delivery, worker: str, code: str, error: str | None = None) -> None:
    if _finish(
        delivery,
        worker,
        state=DeliveryState.FAILED,
        last_error_code=code,
        last_error=(error or code)[:500],
    ):
        _add_fallback(delivery, code)


def _add_fallback(delivery: Delivery, code: str) -> None:
    """Hand an ended delivery to its channel's fallback (e-mail), if it has one.

    One fallback per notification at most: the unique (notification, channel) key enforces it.
    """
    channel = transports.fallback_for(delivery.channel)
    if channel is None:
        return
    exists = db.session.scalar(
        select(Delivery.id).where(
            Delivery.notification_id == delivery.notification_id, Delivery.channel == channel
        )
    )
    if exists:
        return
    fallback = Delivery(
        notification_id=delivery.notification_id,
        organization_id=delivery.organization_id,
        channel=channel,
        state=DeliveryState.PENDING,
        reason=f"{FALLBACK_REASON_PREFIX}{delivery.channel}:{code}"[:64],
        next_attempt_at=utcnow(),
    )
    db.session.add(fallback)
    with write_section():
        db.session.commit()
    _schedule_wake(fallback.id, 0)


#: How the runner around this module (:mod:`.jobs`, which imports it) is asked for a pass when
#: a rescheduled row or a new fallback falls due: ``(delivery id, delay in seconds)``. Set by
#: that runner through :func:`wake_with`, so this module does not import its own runner. With
#: none set the sweep finds the row: a lost wake-up costs one sweep interval, never a message.
_waker: Callable[[int, float], None] | None = None
_wake_lock = threading.Lock()


def wake_with(waker: Callable[[int, float], None]) -> None:
    """Let ``waker`` schedule the passes that retries and fallbacks need (see ``_waker``)."""
    global _waker
    _waker = waker


def _schedule_wake(delivery_id: int, delay: float) -> None:
    if _waker is None or not current_app.config.get("DELIVERY_AUTOWAKE", True):
        return
    with _wake_lock:
        _waker(delivery_id, delay)
