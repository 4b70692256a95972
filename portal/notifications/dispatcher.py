"""The delivery worker's core: claim due deliveries with a lease, send, record the outcome.

At-least-once: a delivery is claimed by setting ``state=sending`` and ``locked_until``; a
worker killed mid-send leaves a lease that expires, and the row is claimed again (DL-09). On
PostgreSQL concurrent workers claim with ``FOR UPDATE SKIP LOCKED`` so no row is handed to two
of them (DL-11); on SQLite the claiming UPDATE is one statement under the database write lock.
Outcomes are written only while this worker still holds the lease.

Outcomes:
- sent → ``sent`` with the provider's message id.
- rate limited → ``retrying`` no earlier than ``Retry-After``; the whole workspace's bucket is
  blocked too; does not count as an attempt.
- temporary (5xx, timeout, connection) → ``retrying`` with capped exponential backoff and full
  jitter; after ``MAX_ATTEMPTS`` → ``dead`` (replayable) and an e-mail fallback.
- permanent (revoked token, unknown user) → ``failed`` at once, e-mail fallback once, the
  integration marked for reconnection or the link flagged (DL-07).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import case, or_, select, update

from ..accounts.models import Organization, User
from ..crypto import SecretUnavailable
from ..database import utcnow, write_section
from ..extensions import db
from ..integrations import health
from ..integrations.models import AccountLink, ChatAccount, Integration, IntegrationState
from ..integrations.providers.base import (
    Message,
    PacingBudget,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    RecipientNotFound,
)
from ..integrations.registry import providers
from . import mail, pacing
from .backoff import MAX_ATTEMPTS, retry_delay
from .explain import explain_reason
from .models import (
    LEASE_EXPIRED,
    UNEXPECTED_ERROR,
    Channel,
    Delivery,
    DeliveryState,
    Notification,
)

log = logging.getLogger(__name__)

#: A provider wait shorter than this is slept through; a longer one reschedules the row.
MAX_INLINE_WAIT = 2.0
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
        _add_email_fallback(delivery, LEASE_EXPIRED)
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
    try:
        if delivery.channel is Channel.EMAIL:
            _send_email(delivery, notification, recipient, worker)
        else:
            _send_chat(delivery, notification, recipient, integration, account, worker)
    except Exception as exc:  # any failure at all must end as an attempt
        _record_crash(delivery_id, worker, exc)


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
    _retry_or_die(delivery, worker, UNEXPECTED_ERROR, detail, fallback=True)


# --- e-mail -----------------------------------------------------------------------------


def _send_email(
    delivery: Delivery, notification: Notification, recipient: User, worker: str
) -> None:
    organization = db.session.get(Organization, notification.organization_id)
    message_id = f"<delivery-{delivery.id}.{delivery.attempts}@chat-connect.example>"
    message = mail.build(
        recipient,
        "notification",
        message_id=message_id,
        notification=notification,
        organization=organization,
        reason=explain_reason(delivery.reason)
        if delivery.reason not in ("not_linked", "linked")
        else "",
    )
    message["X-Chat-Connect-Delivery"] = str(delivery.id)
    try:
        mail.send(message)
    except mail.MailError as exc:
        code = "smtp_permanent" if exc.permanent else "smtp_temporary"
        if exc.permanent:
            _finish(
                delivery,
                worker,
                state=DeliveryState.FAILED,
                last_error_code=code,
                last_error=str(exc),
            )
        else:
            _retry_or_die(delivery, worker, code, str(exc), fallback=False)
        return
    _finish(
        delivery,
        worker,
        state=DeliveryState.SENT,
        provider_message_id=message_id,
        sent_at=utcnow(),
        last_error_code=None,
        last_error=None,
    )


# --- chat -------------------------------------------------------------------------------


def _send_chat(
    delivery: Delivery,
    notification: Notification,
    recipient: User,
    integration: Integration | None,
    account: ChatAccount | None,
    worker: str,
) -> None:
    provider = providers.get(delivery.channel.value)
    if (
        provider is None
        or integration is None
        or integration.organization_id != delivery.organization_id  # PT-14
        or integration.state is not IntegrationState.CONNECTED
    ):
        # DL-14: never send with a dead token; the member gets the e-mail instead.
        _fail_with_fallback(delivery, worker, "integration_unavailable")
        return
    if account is None or account.integration_id != integration.id:
        _fail_with_fallback(delivery, worker, "RecipientNotFound")
        return
    budgets = provider.budgets(integration, account)
    wait = next((w for budget in budgets if (w := _await_token(budget)) > 0), 0.0)
    if wait > 0:
        _reschedule(delivery, worker, wait)
        return
    message = Message(
        title=notification.title,
        body=notification.body,
        url=notification.url,
        locale=recipient.locale or current_app.config["BABEL_DEFAULT_LOCALE"],
    )
    try:
        result = provider.client(integration).send_direct_message(account, message)
    except ProviderRateLimited as exc:
        wait = exc.retry_after if exc.retry_after is not None else retry_delay(1)
        pacing.block(budgets[0].key, wait)
        _reschedule(delivery, worker, wait, code=exc.code, error=str(exc))
        return
    except ProviderAuthError as exc:
        _break_integration(integration, exc.code)
        _fail_with_fallback(delivery, worker, exc.code, str(exc))
        return
    except SecretUnavailable:
        _break_integration(integration, "secret_unreadable")
        _fail_with_fallback(delivery, worker, "secret_unreadable")
        return
    except RecipientNotFound as exc:
        _flag_link(integration, account, exc.code)
        _fail_with_fallback(delivery, worker, exc.code, str(exc))
        return
    except ProviderError as exc:
        if exc.retryable:
            _retry_or_die(delivery, worker, exc.code, str(exc), fallback=True)
        else:
            _fail_with_fallback(delivery, worker, exc.code, str(exc))
        return
    _finish(
        delivery,
        worker,
        state=DeliveryState.SENT,
        provider_message_id=result.provider_message_id,
        sent_at=utcnow(),
        last_error_code=None,
        last_error=None,
    )
    # Health shows the last successful send; a minute's precision spares a write per message.
    now = utcnow()
    if integration.last_success_at is None or now - integration.last_success_at > timedelta(
        minutes=1
    ):
        db.session.execute(
            update(Integration).where(Integration.id == integration.id).values(last_success_at=now)
        )
        db.session.commit()


_bucket_locks: dict[str, threading.Lock] = {}
_bucket_locks_guard = threading.Lock()


def _await_token(budget: PacingBudget) -> float:
    """Take a token from ``budget``, sleeping through short waits; return a longer wait, or 0.

    Within one process only one thread at a time polls a given bucket: the others queue on a
    local lock instead of hammering the shared row (on SQLite every poll is a write).
    """
    with _bucket_locks_guard:
        lock = _bucket_locks.setdefault(budget.key, threading.Lock())
    with lock:
        while (wait := pacing.take(budget)) > 0:
            if wait > MAX_INLINE_WAIT:
                return wait
            time.sleep(wait)
    return 0.0


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


def _retry_or_die(
    delivery: Delivery, worker: str, code: str, error: str, *, fallback: bool
) -> None:
    if delivery.attempts >= MAX_ATTEMPTS:
        finished = _finish(
            delivery, worker, state=DeliveryState.DEAD, last_error_code=code, last_error=error[:500]
        )
        if finished and fallback:
            _add_email_fallback(delivery, code)
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


def _fail_with_fallback(
    delivery: Delivery, worker: str, code: str, error: str | None = None
) -> None:
    if _finish(
        delivery,
        worker,
        state=DeliveryState.FAILED,
        last_error_code=code,
        last_error=(error or code)[:500],
    ):
        _add_email_fallback(delivery, code)


def _add_email_fallback(delivery: Delivery, code: str) -> None:
    """One e-mail per notification at most: the unique (notification, channel) key enforces it."""
    if delivery.channel is Channel.EMAIL:
        return
    exists = db.session.scalar(
        select(Delivery.id).where(
            Delivery.notification_id == delivery.notification_id, Delivery.channel == Channel.EMAIL
        )
    )
    if exists:
        return
    fallback = Delivery(
        notification_id=delivery.notification_id,
        organization_id=delivery.organization_id,
        channel=Channel.EMAIL,
        state=DeliveryState.PENDING,
        reason=f"fallback:{delivery.channel.value}:{code}"[:64],
        next_attempt_at=utcnow(),
    )
    db.session.add(fallback)
    with write_section():
        db.session.commit()
    _schedule_wake(fallback.id, 0)


def _break_integration(integration: Integration, reason: str) -> None:
    fresh = db.session.get(Integration, integration.id, populate_existing=True)
    if fresh is not None and fresh.state is IntegrationState.CONNECTED:
        health.mark_needs_reconnect(fresh, reason)
        db.session.commit()
        health.alert_admins(fresh.id)


def _flag_link(integration: Integration, account: ChatAccount, code: str) -> None:
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id, AccountLink.chat_account_id == account.id
        )
    )
    if link is not None and link.flagged_reason is None:
        health.flag_link(link, code)
        db.session.commit()


_wake_lock = threading.Lock()


def _schedule_wake(delivery_id: int, delay: float) -> None:
    if not current_app.config.get("DELIVERY_AUTOWAKE", True):
        return
    from .jobs import deliver_later

    with _wake_lock:
        deliver_later(delivery_id, delay)
