"""The worker process knows the tasks the web process enqueues (same huey task names), and
the dispatcher wakes it when a row falls due again."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import select

from portal.database import utcnow
from portal.extensions import db
from portal.integrations.providers.base import RecipientNotFound, TemporaryProviderError
from portal.notifications import dispatcher, jobs, services
from portal.notifications.models import Delivery, DeliveryState
from tests.notifications.helpers import FAKE_KEY
from tests.notifications.test_workers import start_worker


def test_worker_registers_tasks_under_their_import_names(
    app: Any, sandbox: Any, tmp_path: Path
) -> None:
    worker = start_worker(app, tmp_path, "names")
    log = tmp_path / "worker-names.log"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "commands are available" not in log.read_text():
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    text = log.read_text()
    assert "+ portal.notifications.jobs._wake" in text  # what the web process enqueues
    assert "+ portal.notifications.jobs.sweep" in text
    assert "__main__." not in text  # each task once: no second sweep under the script's name
    assert "+ portal.integrations.health._send_admin_alerts" in text


def test_retries_and_fallbacks_wake_the_runner(
    app: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any, monkeypatch: Any
) -> None:
    """The dispatcher asks its runner (jobs) for a pass when a row falls due again, through
    the waker jobs hands it, without importing jobs itself."""
    assert dispatcher._waker is jobs.deliver_later
    wakes: list[tuple[int, float]] = []
    monkeypatch.setattr(dispatcher, "_waker", lambda row, delay: wakes.append((row, delay)))
    monkeypatch.setitem(app.config, "DELIVERY_AUTOWAKE", True)
    link_member(tenants["member"])
    notification, _new = services.create_notification(
        tenants["own"], tenants["member"], title="t", body="b"
    )
    db.session.commit()
    fake_provider.outcomes = [
        TemporaryProviderError("503", code="http_503"),
        RecipientNotFound("x"),
    ]
    dispatcher.run_due(limit=1)
    [(chat_id, delay)] = wakes
    chat = db.session.get(Delivery, chat_id, populate_existing=True)
    assert chat is not None and chat.channel == FAKE_KEY and delay >= 0  # the retry's due time
    assert chat.state is DeliveryState.RETRYING
    with time_machine.travel(utcnow() + timedelta(hours=1), tick=False):
        dispatcher.run_due(limit=1)
    fallback = db.session.scalars(
        select(Delivery).where(
            Delivery.notification_id == notification.id, Delivery.channel == "email"
        )
    ).one()
    assert wakes[1:] == [(fallback.id, 0)]  # the e-mail fallback, due at once
