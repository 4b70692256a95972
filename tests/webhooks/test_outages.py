"""Webhooks when things break (issue 17 "Tests"): a receiver down for an hour then back gets every
event, none accepted twice under one webhook-id (DL-03 for webhooks); a worker SIGKILLed during
a burst loses nothing (DL-09 for webhooks); an error nobody expected is an attempt and attempts
end (no loop)."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any
from unittest import mock

from sqlalchemy import func, select, update

from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import DeliveryState
from portal.webhooks import events, sender
from portal.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.notifications.test_workers import start_worker

from .conftest import Receiver


def _queue(tenants: dict[str, Any], count: int) -> None:
    for n in range(count):
        events.emit(tenants["own"].id, "integration.connected", {"integration_id": n})
    db.session.commit()


def _states() -> dict[DeliveryState, int]:
    db.session.rollback()
    return dict(
        db.session.execute(
            select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
        )
        .tuples()
        .all()
    )


def test_receiver_down_for_an_hour_then_back_gets_every_event_once(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    """The clock is moved instead of waited: each pass runs what is due at `now`, and the hour
    of outage covers the schedule's first four waits (0, 5 s, 5 min, 30 min)."""
    _queue(tenants, 60)
    receiver.configure(status=503)
    start = utcnow()
    now = start
    passes = 0

    def clock() -> Any:
        return now

    with (
        mock.patch("portal.outbox.utcnow", side_effect=clock),
        mock.patch("portal.webhooks.sender.utcnow", side_effect=clock),
    ):
        while now < start + timedelta(hours=1):
            sender.run_due()
            passes += 1
            now += timedelta(minutes=1)
        down = receiver.read()
        assert down["accepted"] == 0
        # An attempt storm would show as more than the schedule allows in an hour.
        assert down["received"] == 60 * 4
        receiver.configure(status=200)
        while now < start + timedelta(hours=3) and _states().get(DeliveryState.SENT, 0) < 60:
            sender.run_due()
            now += timedelta(minutes=1)
    back = receiver.read()
    assert _states() == {DeliveryState.SENT: 60}
    assert back["unique"] == 60 and back["accepted"] == 60 and back["duplicates"] == 0
    # Recovery came at the 2 h step of the schedule, not before.
    assert now - start >= timedelta(hours=2)


def test_an_unexpected_error_in_a_send_is_an_attempt_and_attempts_end(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    _queue(tenants, 1)
    with mock.patch("portal.webhooks.http.post", side_effect=RuntimeError("boom")):
        for _ in range(sender.MAX_ATTEMPTS + 3):
            sender.run_due()
            db.session.execute(
                update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.DEAD
    assert row.last_error_code == "unexpected_error"
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 10


def test_a_timeout_is_an_attempt(
    app: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.3
    receiver.configure(delay_ms=1500)
    _queue(tenants, 1)
    started = time.monotonic()
    sender.run_due()
    assert time.monotonic() - started < 1.4  # the worker did not wait for the slow answer
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.RETRYING
    assert row.last_error_code == "timeout"
    # Let the receiver finish the abandoned request, so it does not land in the next test.
    deadline = time.monotonic() + 5
    while receiver.read()["accepted"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)


def test_worker_sigkilled_during_a_burst_loses_nothing(
    app: Any,
    tenants: dict[str, Any],
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    total = 400
    _queue(tenants, total)
    receiver.configure(delay_ms=30)
    # A short timeout gives a short lease (4× the timeout): rows of a killed worker come back
    # within seconds.
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("WEBHOOK_CONCURRENCY", "8")
    rng = random.Random(17)
    kills = 0
    for _ in range(8):
        worker = start_worker(app, tmp_path, "w")
        time.sleep(rng.uniform(1.0, 2.0))
        worker.kill()
        worker.wait()
        kills += 1
    survivor = start_worker(app, tmp_path, "final")
    try:
        deadline = time.monotonic() + 120
        while _states().get(DeliveryState.SENT, 0) < total and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        survivor.terminate()
        survivor.wait(timeout=20)
    assert _states() == {DeliveryState.SENT: total}, "a webhook was lost"
    got = receiver.read()
    assert got["unique"] == total
    # Only requests in flight at a kill may arrive twice (same webhook-id: the receiver can
    # tell); at most the sends in flight per kill.
    assert got["duplicates"] <= kills * 2 * 8
