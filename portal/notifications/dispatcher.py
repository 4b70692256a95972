"""The delivery worker's core: claim due deliveries with a lease, send, record the outcome.

At-least-once through :mod:`portal.outbox` (the lease/claim machinery webhooks share): a worker
killed mid-send leaves a lease that expires and the row is claimed again (DL-09); concurrent
workers never get the same row (DL-11); outcomes are written only under the lease.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select

from ..accounts.models import User
from ..database import utcnow, write_section
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..outbox import GroupCommit, Outbox, run_pipeline
from ..preferences.hours import HELD_QUIET_HOURS
from ..webhooks import reports
from ..webhooks.events import listening
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


#: The deliveries table as an outbox: the claim and lease rules shared with webhooks.
OUTBOX = Outbox(Delivery, MAX_ATTEMPTS)


def due_filter(now: Any) -> Any:
    """Rows a worker may claim (see :meth:`Outbox.due_filter`)."""
    return OUTBOX.due_filter(now)


def end_exhausted_leases() -> list[int]:
    """End every row whose worker died mid-send on its last attempt: ``dead``, e-mail fallback.

    Returns the ids ended (the caller alerts).
    """
    ids = OUTBOX.end_exhausted_leases(also=_report_dead)
    for delivery in db.session.scalars(select(Delivery).where(Delivery.id.in_(ids))):
        _add_fallback(delivery, LEASE_EXPIRED)
    return ids


def _report_dead(ids: list[int]) -> None:
    for delivery in db.session.scalars(select(Delivery).where(Delivery.id.in_(ids))):
        reports.notification_event("notification.dead", delivery)


def claim(limit: int, worker: str = WORKER_ID) -> list[int]:
    """Claim up to ``limit`` due deliveries for ``worker``; return their ids (committed)."""
    return OUTBOX.claim(limit, worker, float(_config("DELIVERY_LEASE_SECONDS", 60)))


def run_due(limit: int | None = None, worker: str = WORKER_ID) -> int:
    """Send everything due now, ``DELIVERY_CONCURRENCY`` at a time; return how many ran."""
    sent: GroupCommit[SentRow] = GroupCommit(lambda rows: _write_sent(rows, worker))
    return run_pipeline(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        lambda wanted: claim(wanted, worker),
        lambda delivery_id: deliver(delivery_id, worker, sent),
        concurrency=int(_config("DELIVERY_CONCURRENCY", 8)),
        batch=int(_config("DELIVERY_BATCH", 32)),
        limit=limit,
    )


#: One query for the row and everything its send needs (built once: this runs for every message).
_LOAD = (
    select(Delivery, Notification, User, Integration, ChatAccount, AccountLink)
    .join(Notification, Notification.id == Delivery.notification_id)
    .join(User, User.id == Notification.recipient_id)
    .outerjoin(Integration, Integration.id == Delivery.integration_id)
    .outerjoin(ChatAccount, ChatAccount.id == Delivery.chat_account_id)
    .outerjoin(
        AccountLink,
        (AccountLink.integration_id == Delivery.integration_id)
        & (AccountLink.user_id == Notification.recipient_id),
    )
    .where(Delivery.id == bindparam("id"))
)


def deliver(
    delivery_id: int, worker: str = WORKER_ID, sent: GroupCommit[SentRow] | None = None
) -> None:
    """Send one claimed delivery and record the outcome.

    A message that went out is recorded through ``sent``, with those of the other threads of
    the same pass (one statement and one commit for the group); alone, it is written at once.
    """
    row = db.session.execute(_LOAD, {"id": delivery_id}).first()
    if row is None:
        return
    delivery, notification, recipient, integration, account, link = row
    if delivery.state is not DeliveryState.SENDING or delivery.locked_by != worker:
        return
    attempt = Attempt(delivery, notification, recipient, integration, account, link)
    try:
        transport = transports.get(delivery.channel)
        outcome = (
            Failed("integration_unavailable")  # its provider is gone from this deployment (DL-14)
            if transport is None
            else transport.send(attempt)
        )
        if isinstance(outcome, Sent) and not (db.session.new or db.session.dirty):
            done = SentRow(
                delivery_id,
                attempt.organization_id,
                outcome.message_id,
                utcnow(),
                delivery.chat_account_id,
                outcome.account_extra,
            )
            if sent is None:
                _write_sent([done], worker)
            else:
                sent.submit(done)
            assert transport is not None
            with write_section():
                transport.after_sent(attempt)  # the message went out, lease or not
            return
        # A send may leave changes behind (the DM channel Slack opened, a button's token),
        # flushed by the first query of the record: inside the write section, so this thread
        # never holds SQLite's write lock while it waits for the section (a lock-order deadlock
        # with a claimer). Another thread's transaction cannot carry them: written here, alone.
        with write_section():
            _record(attempt, transport, outcome, worker)
    except Exception as exc:  # any failure at all must end as an attempt
        _record_crash(delivery_id, worker, exc)


@dataclass(frozen=True)
class SentRow:
    """A delivery that went out, as a group's write needs it (no ORM object crosses threads)."""

    delivery_id: int
    organization_id: int
    message_id: str | None
    sent_at: datetime
    account_id: int | None = None
    account_extra: Mapping[str, Any] | None = None


def _remember(learned: dict[int, Mapping[str, Any]]) -> None:
    """Merge what sends learned about their accounts (``Sent.account_extra``, by account id)
    into ``ChatAccount.extra``, key by key and under the rows' lock: a directory sync writes
    the other keys. Whether or not the lease still held: the message went out either way."""
    if not learned:
        return
    table = ChatAccount.__table__
    current = db.session.execute(
        select(table.c.id, table.c.extra)
        .where(table.c.id.in_(learned))
        .order_by(table.c.id)  # one lock order for every writer
        .with_for_update()
    ).all()
    if current:
        db.session.execute(
            table.update()
            .where(table.c.id == bindparam("account"))
            .values(extra=bindparam("merged")),
            [{"account": i, "merged": {**(extra or {}), **learned[i]}} for i, extra in current],
        )


def _write_sent(rows: list[SentRow], worker: str) -> None:
    """Record that ``rows`` went out, in one statement (and one for the accounts' learned
    keys), with their webhook events, in one transaction."""
    by_id = {r.delivery_id: r for r in rows}

    def tell(held: list[int]) -> None:
        organizations = {by_id[i].organization_id for i in held}
        if not any(
            listening(o, "notification.delivered") or listening(o, "notification.released")
            for o in organizations
        ):
            return  # nobody listens: no need to read the rows back
        for delivery, notification in db.session.execute(
            select(Delivery, Notification)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.id.in_(held))
            .execution_options(populate_existing=True)  # this thread's own row is in its session
        ):
            _tell("notification.delivered", delivery, notification, sent_at=delivery.sent_at)

    with write_section():  # the accounts' write commits with the outcomes (finish_many's)
        _remember({r.account_id: r.account_extra for r in rows if r.account_id and r.account_extra})
        OUTBOX.finish_many(
            worker,
            {
                r.delivery_id: {"provider_message_id": r.message_id, "sent_at": r.sent_at}
                for r in rows
            },
            also=tell,
            state=DeliveryState.SENT,
            last_error_code=None,
            last_error=None,
        )


def _record(attempt: Attempt, transport: Transport | None, outcome: Outcome, worker: str) -> None:
    """Write what the transport answered (each writer checks the lease)."""
    delivery = attempt.delivery
    match outcome:
        case Sent(message_id=message_id, account_extra=learned):
            if learned and delivery.chat_account_id:
                _remember({delivery.chat_account_id: learned})
            _finish(
                delivery,
                worker,
                report="notification.delivered",
                notification=attempt.notification,
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


def _finish(
    delivery: Delivery,
    worker: str,
    *,
    report: str | None = None,
    notification: Notification | None = None,
    **values: Any,
) -> bool:
    """Write the outcome only if this worker still holds the lease; release it. ``report``
    names the webhook event that tells the outcome, committed with it."""

    def tell() -> None:
        assert report is not None
        extra = {"state": values["state"].value}
        if values.get("last_error_code"):
            extra["reason"] = values["last_error_code"]
        if values.get("sent_at"):
            extra["sent_at"] = values["sent_at"]
        _tell(report, delivery, notification, **extra)

    return OUTBOX.finish(delivery.id, worker, also=tell if report else None, **values)


def _tell(report: str, delivery: Delivery, notification: Notification | None, **extra: Any) -> None:
    """Queue the webhook event ``report`` about an outcome (and, for the first attempt of a
    notification held for quiet hours, the event saying it was released)."""
    if delivery.attempts == 1 and delivery.reason == HELD_QUIET_HOURS:
        reports.notification_event("notification.released", delivery, notification)
    reports.notification_event(report, delivery, notification, **extra)


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
            delivery,
            worker,
            report="notification.dead",
            state=DeliveryState.DEAD,
            last_error_code=code,
            last_error=error[:500],
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
        report="notification.failed",
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
