"""The delivery pipeline against the sandbox's SMTP catcher and a scripted chat provider.

Named after reliability.md §5.2: DL-01…DL-08, DL-14.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import AccountLink, Integration, IntegrationState
from portal.integrations.providers.base import (
    ProviderAuthError,
    ProviderRateLimited,
    RecipientNotFound,
    TemporaryProviderError,
)
from portal.notifications import dispatcher, services
from portal.notifications.backoff import MAX_ATTEMPTS
from portal.notifications.models import Delivery, DeliveryState, Notification
from tests.notifications.helpers import FAKE_KEY


def notify(member: Any, title: str = "目標の更新", **kwargs: Any) -> Notification:
    organization = member.organization
    notification, _ = services.create_notification(
        organization, member, title=title, body="本文です", **kwargs
    )
    db.session.commit()
    return notification


def mails(sandbox: Any, to: str) -> list[dict[str, Any]]:
    return sandbox.control("GET", f"/_control/mail?to={to}")


def deliveries(notification: Notification) -> dict[str, Delivery]:
    db.session.expire_all()
    rows = db.session.scalars(select(Delivery).where(Delivery.notification_id == notification.id))
    return {row.channel: row for row in rows}


def travel(seconds: float) -> Any:
    return time_machine.travel(utcnow() + timedelta(seconds=seconds), tick=False)


def test_unlinked_member_gets_an_email_not_a_failure(sandbox: Any, tenants: dict[str, Any]) -> None:
    member = tenants["member"]
    member.name = "佐藤 翔太"
    notification = notify(member, url="https://hr.example/goals/1")
    assert dispatcher.run_due() == 1
    row = deliveries(notification)["email"]
    assert row.state is DeliveryState.SENT and row.reason == "not_linked"
    [mail] = mails(sandbox, member.email)
    assert mail["subject"] == "目標の更新"
    assert (
        "佐藤 翔太" in mail["text"]
        and "本文です" in mail["text"]
        and "https://hr.example/goals/1" in mail["text"]
    )
    assert "<h2" in mail["html"]
    assert mail["delivery"] == str(row.id) and row.provider_message_id == mail["message_id"]


def test_email_in_the_members_language(sandbox: Any, tenants: dict[str, Any]) -> None:
    member = tenants["member"]
    member.locale = "en"
    notify(member)
    dispatcher.run_due()
    [mail] = mails(sandbox, member.email)
    assert "sent by Chat Connect on behalf of" in mail["text"]


def test_dl01_rollback_leaves_nothing_to_send(sandbox: Any, tenants: dict[str, Any]) -> None:
    services.create_notification(tenants["own"], tenants["member"], title="x", body="y")
    db.session.rollback()
    assert dispatcher.run_due() == 0
    assert mails(sandbox, tenants["member"].email) == []


def test_dl02_double_enqueue_sends_once(sandbox: Any, tenants: dict[str, Any]) -> None:
    for _ in range(2):
        services.create_notification(
            tenants["own"], tenants["member"], title="x", body="y", idempotency_key="evt-1"
        )
        db.session.commit()
    dispatcher.run_due()
    assert len(mails(sandbox, tenants["member"].email)) == 1


def test_linked_member_gets_a_dm(
    sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"], "U100")
    notification = notify(tenants["member"])
    dispatcher.run_due()
    row = deliveries(notification)
    assert set(row) == {FAKE_KEY}
    sent = row[FAKE_KEY]
    assert sent.state is DeliveryState.SENT and sent.provider_message_id == "msg-1"
    assert fake_provider.sent == [("U100", "目標の更新")]
    assert mails(sandbox, tenants["member"].email) == []
    integration = db.session.scalars(select(Integration)).one()
    assert integration.last_success_at is not None


def test_dl03_provider_errors_for_a_stretch_then_recovery(
    sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any, make_user: Any
) -> None:
    members = [tenants["member"]] + [make_user(tenants["own"]) for _ in range(9)]
    for member in members:
        link_member(member)
    notifications = [notify(m) for m in members]
    fake_provider.outcomes = [TemporaryProviderError("503", code="http_503") for _ in range(25)]
    elapsed = 0.0
    while any(
        d.state is not DeliveryState.SENT for n in notifications for d in deliveries(n).values()
    ):
        with travel(elapsed):
            dispatcher.run_due()
        elapsed += 600  # ten simulated minutes between sweeps
        assert elapsed < 24 * 3600
    assert len(fake_provider.sent) == 10  # 0 lost, none twice
    assert fake_provider.calls == 35
    assert all(set(deliveries(n)) == {FAKE_KEY} for n in notifications)  # no e-mail fallback


def test_backoff_spacing_grows_and_respects_the_cap(
    tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    notification = notify(tenants["member"])
    fake_provider.outcomes = [TemporaryProviderError("down", code="http_502") for _ in range(4)]
    gaps = []
    now = utcnow()
    for _ in range(4):
        with time_machine.travel(now, tick=False):
            dispatcher.run_due()
        row = deliveries(notification)[FAKE_KEY]
        assert row.state is DeliveryState.RETRYING
        gap = (row.next_attempt_at - now).total_seconds()
        gaps.append(gap)
        assert 0 <= gap <= 5 * 2 ** (row.attempts - 1)
        now = row.next_attempt_at
    assert row.attempts == 4


@pytest.mark.parametrize("retry_after", [30.0, 120.0])
def test_dl04_retry_after_is_a_floor(
    tenants: dict[str, Any], fake_provider: Any, link_member: Any, retry_after: float
) -> None:
    link_member(tenants["member"])
    notification = notify(tenants["member"])
    fake_provider.outcomes = [ProviderRateLimited("slow down", retry_after=retry_after)]
    start = utcnow()
    with time_machine.travel(start, tick=False):
        dispatcher.run_due()
    row = deliveries(notification)[FAKE_KEY]
    assert row.state is DeliveryState.RETRYING
    assert row.attempts == 0  # waiting for a rate limit is not a failed attempt
    assert (row.next_attempt_at - start).total_seconds() >= retry_after
    with travel(retry_after - 1):
        assert dispatcher.run_due() == 0  # 0 attempts before Retry-After
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        dispatcher.run_due()
    assert deliveries(notification)[FAKE_KEY].state is DeliveryState.SENT
    assert fake_provider.calls == 2


def test_dl05_one_organizations_429_storm_does_not_slow_another(
    tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"], workspace="W-storm")
    link_member(tenants["other_member"], workspace="W-calm")
    stormy = notify(tenants["member"])
    fake_provider.outcomes = [ProviderRateLimited("storm", retry_after=600)]
    dispatcher.run_due()  # the storm blocks W-storm's bucket for 10 minutes
    calm = notify(tenants["other_member"])
    extra_stormy = notify(tenants["member"], title="2通目")
    dispatcher.run_due()
    assert deliveries(calm)[FAKE_KEY].state is DeliveryState.SENT
    assert deliveries(stormy)[FAKE_KEY].state is DeliveryState.RETRYING
    # The blocked workspace's new delivery waits without calling the provider (no tight loop).
    assert deliveries(extra_stormy)[FAKE_KEY].state is DeliveryState.RETRYING
    assert fake_provider.calls == 2


@pytest.mark.parametrize(
    ("error", "effect"),
    [
        (ProviderAuthError("revoked", code="token_revoked"), "integration"),
        (RecipientNotFound("gone", code="user_disabled"), "link"),
    ],
)
def test_dl07_permanent_error_no_retry_email_once(
    sandbox: Any,
    tenants: dict[str, Any],
    fake_provider: Any,
    link_member: Any,
    error: Exception,
    effect: str,
) -> None:
    link = link_member(tenants["member"])
    notification = notify(tenants["member"])
    fake_provider.outcomes = [error]
    dispatcher.run_due()
    rows = deliveries(notification)
    assert rows[FAKE_KEY].state is DeliveryState.FAILED and rows[FAKE_KEY].attempts == 1
    assert rows["email"].state is DeliveryState.SENT
    assert rows["email"].reason.startswith(f"fallback:{FAKE_KEY}:")
    with travel(7200):
        dispatcher.run_due()
    assert fake_provider.calls == 1  # never retried
    assert len(mails(sandbox, tenants["member"].email)) == 1  # e-mail fallback exactly once
    if effect == "integration":
        integration = db.session.get(Integration, link.integration_id)
        assert integration.state is IntegrationState.NEEDS_RECONNECT
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "integration.needs_reconnect" in actions
        assert len(mails(sandbox, tenants["admin"].email)) == 1  # the admin was told
    else:
        assert db.session.get(AccountLink, link.id).flagged_reason == "user_disabled"


def test_dl14_integration_disabled_while_rows_are_pending(
    sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link = link_member(tenants["member"])
    notification = notify(tenants["member"])
    integration = db.session.get(Integration, link.integration_id)
    integration.state = IntegrationState.NEEDS_RECONNECT
    db.session.commit()
    dispatcher.run_due()
    rows = deliveries(notification)
    assert rows[FAKE_KEY].state is DeliveryState.FAILED
    assert rows["email"].state is DeliveryState.SENT
    assert fake_provider.calls == 0  # never sent with a dead token
    # New notifications go straight to e-mail while the integration is broken.
    assert set(deliveries(notify(tenants["member"]))) == {"email"}


def test_dl08_attempts_exhausted_then_replay(
    sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    notification = notify(tenants["member"])
    fake_provider.outcomes = [
        TemporaryProviderError("down", code="http_500") for _ in range(MAX_ATTEMPTS)
    ]
    elapsed = 0.0
    for _ in range(MAX_ATTEMPTS):
        with travel(elapsed):
            dispatcher.run_due()
        elapsed += 4000
    rows = deliveries(notification)
    assert rows[FAKE_KEY].state is DeliveryState.DEAD and rows[FAKE_KEY].attempts == MAX_ATTEMPTS
    assert rows["email"].state is DeliveryState.SENT  # the member still hears about it
    assert fake_provider.calls == MAX_ATTEMPTS
    services.replay(rows[FAKE_KEY], actor=tenants["admin"])
    with travel(elapsed):
        dispatcher.run_due()
    rows = deliveries(notification)
    assert rows[FAKE_KEY].state is DeliveryState.SENT
    assert len(fake_provider.sent) == 1
    assert len(mails(sandbox, tenants["member"].email)) == 1  # replay did not repeat the e-mail
    with pytest.raises(ValueError, match="only dead or failed"):
        services.replay(rows[FAKE_KEY], actor=tenants["admin"])


def test_expired_lease_is_claimed_again(sandbox: Any, tenants: dict[str, Any]) -> None:
    notify(tenants["member"])
    [claimed] = dispatcher.claim(10, worker="crashed-worker")  # claimed, then the worker died
    assert dispatcher.claim(10, worker="other") == []  # the lease protects it meanwhile
    with travel(61):
        assert dispatcher.run_due(worker="other") == 1
    row = db.session.get(Delivery, claimed)
    db.session.refresh(row)
    assert row.state is DeliveryState.SENT and row.attempts == 2


def test_a_stale_worker_cannot_overwrite_a_reclaimed_delivery(
    sandbox: Any, tenants: dict[str, Any]
) -> None:
    notify(tenants["member"])
    [delivery_id] = dispatcher.claim(10, worker="slow")
    with travel(61):
        dispatcher.run_due(worker="fast")
    dispatcher.deliver(delivery_id, worker="slow")  # the slow worker wakes up late
    assert len(mails(sandbox, tenants["member"].email)) == 1
    row = db.session.get(Delivery, delivery_id)
    db.session.refresh(row)
    assert row.state is DeliveryState.SENT and row.locked_by is None


def test_test_message_uses_the_pipeline(sandbox: Any, client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    response = client.post_form(f"/settings/members/{tenants['member'].id}/test-message")
    assert response.status_code == 302
    dispatcher.run_due()
    [mail] = mails(sandbox, tenants["member"].email)
    assert "テストメッセージ" in mail["subject"] or "Test message" in mail["subject"]
    assert db.session.scalars(select(Delivery)).one().channel == "email"


def test_delivery_log_explains_and_replays(
    client: Any, sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    notify(tenants["member"], title="フィードバックが届きました")
    fake_provider.outcomes = [RecipientNotFound("gone", code="user_disabled")]
    dispatcher.run_due()
    client.login(tenants["admin"])
    page = client.get("/deliveries").text
    assert "フィードバックが届きました" in page
    assert "無効" in page or "deactivated" in page  # plain-language reason for the failure
    assert client.get("/deliveries?state=sent&channel=email").text.count('<tr id="delivery-') == 1
    assert client.get("/deliveries?member=nobody").text.count('<tr id="delivery-') == 0
    assert client.get("/deliveries?state=bogus").status_code == 400
    failed = db.session.scalars(
        select(Delivery).where(Delivery.state == DeliveryState.FAILED)
    ).one()
    assert client.post_form(f"/deliveries/{failed.id}/replay").status_code == 302
    db.session.refresh(failed)
    assert failed.state is DeliveryState.PENDING


def test_member_sees_own_recent_deliveries(
    client: Any, sandbox: Any, tenants: dict[str, Any]
) -> None:
    notify(tenants["member"], title="自分宛て")
    notify(tenants["other_member"], title="よその人宛て")
    dispatcher.run_due()
    client.login(tenants["member"])
    page = client.get("/me/accounts").text
    assert "自分宛て" in page and "よその人宛て" not in page
