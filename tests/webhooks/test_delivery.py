"""Webhooks end to end against the sandbox receiver (issue 17 items 2–3): events written in the
transaction of their change, signed Standard Webhooks requests, the spec's retry schedule, 410
disabling the endpoint, the attempt log and replay."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from portal.database import utcnow
from portal.extensions import db
from portal.notifications import dispatcher
from portal.notifications.models import DeliveryState
from portal.notifications.services import create_notification
from portal.webhooks import endpoints, events, sender
from portal.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

from .conftest import Receiver


def _due_now() -> None:
    """Make every waiting webhook due (the schedule's waits, without waiting)."""
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.state == DeliveryState.RETRYING)
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def _notify(tenants: dict[str, Any], **extra: Any) -> Any:
    notification, _new = create_notification(
        tenants["own"], tenants["member"], title="1on1の予定", body="明日 10:00", **extra
    )
    db.session.commit()
    return notification


def test_a_delivered_notification_reaches_the_receiver_signed(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    notification = _notify(tenants)
    dispatcher.run_due()
    # The member has no chat account: the chat tool was skipped, then the e-mail delivered.
    assert sender.run_due() == 2
    data = receiver.read()
    assert data["received"] == 2
    by_type = {r["type"]: r for r in data["recent"]}
    skipped = json.loads(by_type["notification.skipped"]["body"])["data"]
    assert skipped["reason"] == "not_linked" and skipped["channel"] == "chat"
    got = by_type["notification.delivered"]
    assert got["verified"] is True  # the receiver checked it with the secret, as a host would
    payload = Webhook(endpoint.secret_text).verify(got["body"], got["headers"])
    assert payload["data"]["notification_id"] == notification.id
    assert payload["data"]["state"] == "sent"
    assert payload["data"]["channel"] == "email"
    assert "content" not in payload["data"]  # thin unless the endpoint opted in
    assert "明日" not in got["body"]
    rows = db.session.scalars(select(WebhookDelivery)).all()
    assert {row.state for row in rows} == {DeliveryState.SENT}
    attempts = db.session.scalars(select(WebhookAttempt)).all()
    assert [(a.status, a.attempt) for a in attempts] == [(200, 1), (200, 1)]


def test_content_only_to_endpoints_that_opted_in(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    endpoints.update(
        endpoint, tenants["admin"], endpoints.validate(receiver.url, "", list(events.TYPES), True)
    )
    _notify(tenants)
    dispatcher.run_due()
    sender.run_due()
    for received in receiver.read()["recent"]:
        assert json.loads(received["body"])["data"]["content"]["title"] == "1on1の予定"


def test_nothing_is_written_when_nobody_listens(tenants: dict[str, Any]) -> None:
    _notify(tenants)
    dispatcher.run_due()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_an_event_rolls_back_with_its_change(
    tenants: dict[str, Any], endpoint: WebhookEndpoint
) -> None:
    create_notification(tenants["own"], tenants["member"], title="t", body="b", urgent=False)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_only_subscribed_types_and_enabled_endpoints(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    endpoints.update(
        endpoint,
        tenants["admin"],
        endpoints.validate(receiver.url, "", ["integration.connected"], False),
    )
    _notify(tenants)
    dispatcher.run_due()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    endpoints.set_enabled(endpoint, tenants["admin"], False)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_retries_follow_the_spec_schedule_then_dead(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    receiver.configure(status=500)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    waits = []
    for _ in range(sender.MAX_ATTEMPTS):
        before = utcnow()
        assert sender.run_due() == 1
        row = db.session.scalar(select(WebhookDelivery))
        assert row is not None
        if row.state is DeliveryState.RETRYING:
            waits.append((row.next_attempt_at - before).total_seconds())
        _due_now()
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.DEAD
    assert row.attempts == sender.MAX_ATTEMPTS == 10
    for wait, planned in zip(waits, sender.SCHEDULE[1:], strict=True):
        assert planned - 1 <= wait <= planned * (1 + sender.JITTER) + 1
    assert receiver.read()["received"] == 10
    ids = {r["webhook_id"] for r in receiver.read()["recent"]}
    assert len(ids) == 1  # the same webhook-id on every retry


def test_a_410_turns_the_endpoint_off_and_tells_the_admins(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver, sandbox: Any
) -> None:
    receiver.configure(status=410)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    sender.run_due()
    db.session.refresh(endpoint)
    assert endpoint.enabled is False and endpoint.disabled_reason == "gone"
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.FAILED
    mail = sandbox.control("GET", "/_control/mail?to=admin@demo.example")
    assert any("410" in m["text"] and receiver.url in m["text"] for m in mail)
    # Later events are not queued for it.
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_replay_sends_the_same_webhook_id_again(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    receiver.configure(status=500)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    for _ in range(sender.MAX_ATTEMPTS):
        sender.run_due()
        _due_now()
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.DEAD
    receiver.configure(status=200)
    sender.replay(row, actor=tenants["admin"])
    assert sender.run_due() == 1
    db.session.refresh(row)
    assert row.state is DeliveryState.SENT
    data = receiver.read()
    assert data["accepted"] == 1 and data["unique"] == 1


@pytest.mark.parametrize("status", [301, 302, 307, 400, 404, 429, 503])
def test_anything_but_2xx_is_a_retry_and_redirects_are_not_followed(
    tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver, status: int
) -> None:
    receiver.configure(status=status)
    events.emit(tenants["own"].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    sender.run_due()
    row = db.session.scalar(select(WebhookDelivery))
    assert row is not None and row.state is DeliveryState.RETRYING
    assert row.last_error_code == f"http_{status}" and row.last_status == status
