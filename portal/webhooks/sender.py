"""Deliver queued webhook events: the outbox of ``webhook_deliveries``, at least once.

Rows are claimed with the same lease machinery as notification deliveries
(:class:`portal.outbox.Outbox`) and answer with the same outcomes (``Sent``, ``Retry``,
``Failed``). Retries follow the Standard Webhooks schedule — immediately, then 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h — with up to 10 % jitter, so events queued together
against a receiver that was down do not all come back in the same second. Then the row is
``dead`` and an admin can replay it from the endpoint's log.

- 2xx → ``sent``.
- 410 Gone → ``failed``, and the endpoint is disabled and its organization's admins told: the
  receiver said it will never take these again.
- anything else (3xx — redirects are not followed —, 4xx, 5xx, a timeout, a refused
  connection, an address that resolved somewhere unsafe) → one attempt spent, retried.
- an error nobody expected is an attempt too, so no row is ever re-sent forever.

Each attempt writes a :class:`WebhookAttempt` in the same transaction as its outcome.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, select, update

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow, write_section
from ..extensions import db
from ..notifications import mail
from ..notifications.channels import Failed, Outcome, Retry, Sent
from ..notifications.dispatcher import WORKER_ID
from ..notifications.models import UNEXPECTED_ERROR, DeliveryState
from ..outbox import Outbox, run_pipeline
from ..tasks import crontab, periodic_task, task
from . import events, http, signing
from .addresses import UnsafeWebhookURL
from .events import body_for
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)

#: Seconds before attempt n+1 (n = attempts made so far), as the Standard Webhooks spec says.
SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.1
#: What ``last_error_code`` says for a 410 and for a send to an endpoint turned off meanwhile.
GONE = "gone"
DISABLED = "endpoint_disabled"

OUTBOX = Outbox(WebhookDelivery, MAX_ATTEMPTS)


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts (1-based)."""
    base = SCHEDULE[min(attempts, MAX_ATTEMPTS - 1)]
    return base * (1 + (rng or random).uniform(0, JITTER))


def _config(name: str) -> Any:
    return current_app.config[name]


def claim(limit: int, worker: str = WORKER_ID) -> list[int]:
    # The lease outlives the longest send (the timeout), so a slow receiver never has its row
    # claimed a second time while the first request is still waiting.
    lease = 4 * float(_config("WEBHOOK_TIMEOUT_SECONDS"))
    return OUTBOX.claim(limit, worker, lease)


def run_due(limit: int | None = None, worker: str = WORKER_ID) -> int:
    """Send every due webhook, ``WEBHOOK_CONCURRENCY`` at a time; return how many ran."""
    OUTBOX.end_exhausted_leases()
    return run_pipeline(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        lambda wanted: claim(wanted, worker),
        lambda row_id: deliver(row_id, worker),
        concurrency=int(_config("WEBHOOK_CONCURRENCY")),
        batch=2 * int(_config("WEBHOOK_CONCURRENCY")),
        limit=limit,
        name="webhook",
    )


def deliver(row_id: int, worker: str = WORKER_ID) -> None:
    """Send one claimed webhook delivery and record the attempt and its outcome."""
    row = db.session.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == row_id)
    ).first()
    if row is None:
        return
    delivery, event, endpoint = row
    if delivery.state is not DeliveryState.SENDING or delivery.locked_by != worker:
        return
    now = utcnow()
    attempt = WebhookAttempt(
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        organization_id=delivery.organization_id,
        attempt=delivery.attempts,
        started_at=now,
    )
    try:
        outcome = _send(delivery, event, endpoint, attempt, now)
    except Exception as exc:  # any failure at all must end as an attempt
        log.exception("webhook delivery %s: unexpected error in the send", row_id)
        db.session.rollback()
        attempt.error = f"{type(exc).__name__}: {exc}"[:300]
        outcome = Retry(UNEXPECTED_ERROR, attempt.error)
    _record(delivery, endpoint, attempt, outcome, worker)


#: Unsealed secrets per (endpoint, last change): decrypting them for every request of a burst
#: would cost more than signing it. A rotation changes ``updated_at``, so it is a new entry.
_secrets: dict[tuple[int, datetime], tuple[datetime | None, list[str]]] = {}
_secrets_lock = threading.Lock()
SECRETS_KEPT = 512


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    key = (endpoint.id, endpoint.updated_at)
    with _secrets_lock:
        cached = _secrets.get(key)
    if cached is None:
        # Both secrets, as if no overlap had ended; the overlap is checked below, per send.
        both = endpoint.signing_secrets(datetime.min.replace(tzinfo=UTC))
        cached = (endpoint.previous_secret_until, both)
        with _secrets_lock:
            if len(_secrets) >= SECRETS_KEPT:
                _secrets.clear()
            _secrets[key] = cached
    until, both = cached
    return both if until is not None and until > now else both[:1]


def _send(
    delivery: WebhookDelivery,
    event: WebhookEvent,
    endpoint: WebhookEndpoint,
    attempt: WebhookAttempt,
    now: datetime,
) -> Outcome:
    if not endpoint.enabled and event.type != "webhook.test":
        attempt.error = "the endpoint is disabled"
        return Failed(DISABLED, attempt.error)
    body = body_for(event, endpoint)
    headers = signing.headers(_signing_secrets(endpoint, now), event.message_id, now, body)
    try:
        answer = http.post(
            endpoint.url,
            body.encode("utf-8"),
            headers,
            allow_loopback=bool(_config("WEBHOOK_ALLOW_LOOPBACK")),
            timeout=float(_config("WEBHOOK_TIMEOUT_SECONDS")),
            pool_size=int(_config("WEBHOOK_CONCURRENCY")),
        )
    except UnsafeWebhookURL as refused:
        attempt.error = refused.reason[:300]
        return Retry("unsafe_address", refused.reason)
    except http.SendError as problem:
        attempt.error = str(problem)[:300]
        attempt.duration_ms = problem.duration_ms
        return Retry(problem.code, str(problem))
    attempt.status = answer.status
    attempt.response_body = answer.body or None
    attempt.duration_ms = answer.duration_ms
    if 200 <= answer.status < 300:
        return Sent(None)
    if answer.status == 410:
        return Failed(GONE, "the receiver answered 410 Gone")
    return Retry(f"http_{answer.status}", f"the receiver answered {answer.status}")


def _record(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    attempt: WebhookAttempt,
    outcome: Outcome,
    worker: str,
) -> None:
    values: dict[str, Any] = {"last_status": attempt.status}
    gone = False
    match outcome:
        case Sent():
            values.update(state=DeliveryState.SENT, sent_at=utcnow(), last_error_code=None)
            values.update(last_error=None)
        case Retry(code=code, error=error) if delivery.attempts >= MAX_ATTEMPTS:
            values.update(state=DeliveryState.DEAD, last_error_code=code, last_error=error[:500])
        case Retry(code=code, error=error):
            wait = retry_delay(delivery.attempts)
            values.update(
                state=DeliveryState.RETRYING,
                next_attempt_at=utcnow() + timedelta(seconds=wait),
                last_error_code=code,
                last_error=error[:500],
            )
        case Failed(code=code, error=error):
            values.update(state=DeliveryState.FAILED, last_error_code=code)
            values.update(last_error=(error or code)[:500])
            gone = code == GONE

    def alongside() -> None:
        # A Core insert: the log row is never read back here, and an ORM flush per attempt
        # costs more than the rest of the record.
        db.session.execute(insert(WebhookAttempt).values(_columns(attempt)))
        if gone:
            _disable_gone(endpoint)

    OUTBOX.finish(delivery.id, worker, also=alongside, **values)
    if gone:
        _tell_admins_gone(endpoint.id)


def _columns(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "delivery_id": attempt.delivery_id,
        "endpoint_id": attempt.endpoint_id,
        "organization_id": attempt.organization_id,
        "attempt": attempt.attempt,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms or 0,
        "status": attempt.status,
        "response_body": attempt.response_body,
        "error": attempt.error,
    }


def _disable_gone(endpoint: WebhookEndpoint) -> None:
    """Turn the endpoint off (once, however many rows see the 410) and audit it."""
    changed = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason=GONE, disabled_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed:
        audit.record(
            "webhook.disabled_gone",
            organization=db.session.get(Organization, endpoint.organization_id),
            actor=None,
            target=("webhook_endpoint", endpoint.id, endpoint.url[:200]),
        )


def _tell_admins_gone(endpoint_id: int) -> None:
    try:
        _email_admins_gone(endpoint_id)
    except Exception:  # the settings page shows it too; never break the worker
        log.exception("could not queue the 410 alert for webhook endpoint %s", endpoint_id)


@task()
def _email_admins_gone(endpoint_id: int) -> None:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.disabled_reason != GONE:
        return
    url = mail.external_url("webhooks.index")
    mail.email_admins(
        endpoint.organization_id,
        "webhook_disabled",
        lambda _admin: {"endpoint_url": endpoint.url, "url": url},
    )


def replay(delivery: WebhookDelivery, *, actor: User) -> None:
    """Send a dead or failed webhook again: the same row and ``webhook-id``; commits."""
    before = OUTBOX.rearm(delivery)
    audit.record(
        "webhook.replayed",
        organization=db.session.get(Organization, delivery.organization_id),
        actor=actor,
        target=("webhook_delivery", delivery.id, None),
        before=before,
        after={"state": "pending"},
    )
    with write_section():
        db.session.commit()
    wake()


def wake() -> None:
    """Ask a worker for a webhook pass now (after commit; the sweep is the backstop)."""
    if current_app.config.get("DELIVERY_AUTOWAKE", True):
        enqueue_pass()


def enqueue_pass() -> None:
    """Queue a webhook pass for the worker (needs no application context: the worker's sweep
    thread calls it)."""
    try:
        _pass()
    except Exception:  # the queue is down: the sweep sends them, a minute late at most
        log.exception("could not queue a webhook pass")


@task()
def _pass() -> int:
    ran = run_due()
    if ran:
        log.info("webhooks attempted: %d", ran)
    return ran


@periodic_task(crontab(minute="*"))
def sweep() -> int:
    """The backstop: retries that fell due, rows whose worker stopped, lost wake-ups."""
    return run_due()


# Every commit that queued webhook events wakes a sender (events cannot import this module).
events.wake_with(wake)
