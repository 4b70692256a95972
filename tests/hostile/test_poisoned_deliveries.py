"""No delivery may loop (issue 12, class 4): any unexpected exception in any channel's send is
an attempt with its error recorded; after the attempt limit the delivery is dead with its
e-mail fallback and a reason an admin understands; a worker that dies mid-send on every
attempt ends the same way, and the admins are told once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import AccountLink, Integration, IntegrationState
from portal.integrations.providers.base import (
    ProviderAuthError,
    RecipientNotFound,
    TemporaryProviderError,
)
from portal.notifications import dispatcher, mail, services, stuck
from portal.notifications.backoff import MAX_ATTEMPTS
from portal.notifications.explain import explain_outcome
from portal.notifications.models import Delivery, DeliveryState, Notification
from tests.notifications.helpers import FAKE_KEY

TERMINAL = {DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.DEAD}


def notify(member: Any, title: str = "目標の更新") -> Notification:
    notification, _ = services.create_notification(
        member.organization, member, title=title, body="本文です"
    )
    db.session.commit()
    return notification


def rows(notification: Notification) -> dict[str, Delivery]:
    db.session.expire_all()
    found = db.session.scalars(select(Delivery).where(Delivery.notification_id == notification.id))
    return {row.channel: row for row in found}


def drive(runs: int) -> None:
    """Run the worker ``runs`` times, an hour apart (past any backoff and lease)."""
    for step in range(runs):
        with time_machine.travel(utcnow() + timedelta(hours=step + 1), tick=False):
            dispatcher.run_due()


def mails(sandbox: Any, to: str) -> list[dict[str, Any]]:
    return sandbox.control("GET", f"/_control/mail?to={to}")


def test_an_email_that_never_builds_ends_dead_not_stuck(
    sandbox: Any, tenants: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case: the message build raised on every claim and the row looped."""

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    monkeypatch.setattr(mail, "build", poisoned)
    notification = notify(tenants["member"])
    drive(MAX_ATTEMPTS + 3)
    row = rows(notification)["email"]
    assert row.state is DeliveryState.DEAD
    assert row.attempts == MAX_ATTEMPTS
    assert row.last_error_code == "unexpected_error" and "linefeed" in (row.last_error or "")
    assert row.locked_by is None
    with force_locale("en"):
        story = explain_outcome("email", row.state.value, row.last_error_code, row.attempts)
    assert "unexpected error" in story and f"after {MAX_ATTEMPTS} attempts" in story
    groups = stuck.summary(tenants["own"].id)
    assert [(g.code, g.dead) for g in groups] == [("unexpected_error", 1)]


@pytest.mark.parametrize("error", [KeyError("conversation"), TypeError("None"), RecursionError()])
def test_an_unexpected_chat_error_falls_back_to_email_after_the_limit(
    sandbox: Any,
    tenants: dict[str, Any],
    fake_provider: Any,
    link_member: Any,
    error: BaseException,
) -> None:
    link_member(tenants["member"])
    notification = notify(tenants["member"])
    fake_provider.outcomes = [error] * (MAX_ATTEMPTS + 5)
    drive(MAX_ATTEMPTS + 3)
    found = rows(notification)
    assert found[FAKE_KEY].state is DeliveryState.DEAD
    assert found[FAKE_KEY].attempts == fake_provider.calls == MAX_ATTEMPTS
    assert found[FAKE_KEY].last_error_code == "unexpected_error"
    assert found["email"].state is DeliveryState.SENT  # the member still hears about it
    assert len(mails(sandbox, tenants["member"].email)) == 1


OUTCOMES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            TemporaryProviderError("down", code="http_500"),
            ProviderAuthError("revoked", code="invalid_auth"),
            RecipientNotFound("gone", code="user_not_found"),
            KeyError("x"),
            ValueError("bad"),
            ZeroDivisionError(),
            AttributeError("missing"),
        ]
    ),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(outcomes=st.lists(OUTCOMES, min_size=1, max_size=MAX_ATTEMPTS + 3))
def test_any_sequence_of_outcomes_ends_within_the_attempt_limit(
    sandbox: Any,
    tenants: dict[str, Any],
    fake_provider: Any,
    link_member: Any,
    outcomes: list[BaseException | None],
) -> None:
    # Examples share the test's database: finish earlier rows, reconnect what they broke.
    db.session.execute(update(Delivery).values(state=DeliveryState.SENT))
    if db.session.scalar(select(AccountLink)) is None:
        link_member(tenants["member"])
    db.session.execute(update(Integration).values(state=IntegrationState.CONNECTED))
    db.session.execute(update(AccountLink).values(flagged_reason=None))
    db.session.commit()
    notification = notify(tenants["member"])
    fake_provider.outcomes = list(outcomes)
    fake_provider.calls = 0
    drive(MAX_ATTEMPTS + 2)
    for row in rows(notification).values():
        assert row.state in TERMINAL, (row.channel, row.state, row.last_error_code)
        assert row.attempts <= MAX_ATTEMPTS
    assert fake_provider.calls <= MAX_ATTEMPTS


def abandon(delivery: Delivery, attempts: int, expiries: int = 0) -> None:
    """As a worker killed mid-send leaves a row: ``sending``, lease run out."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id)
        .values(
            state=DeliveryState.SENDING,
            locked_by="dead-worker:1",
            locked_until=utcnow() - timedelta(minutes=5),
            attempts=attempts,
            lease_expiries=expiries,
        )
    )
    db.session.commit()


def test_the_claim_counts_each_expired_lease(tenants: dict[str, Any]) -> None:
    row = rows(notify(tenants["member"]))["email"]
    abandon(row, attempts=1)
    assert dispatcher.claim(10, worker="w:2") == [row.id]
    db.session.refresh(row)
    assert (row.attempts, row.lease_expiries, row.last_error_code) == (2, 1, "lease_expired")


def test_a_lease_abandoned_on_every_attempt_ends_dead_and_alerts_once(
    sandbox: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    notification = notify(tenants["member"])
    abandon(rows(notification)[FAKE_KEY], attempts=MAX_ATTEMPTS, expiries=MAX_ATTEMPTS)
    assert dispatcher.claim(10, worker="w:2") == []  # never claimed again
    assert dispatcher.end_exhausted_leases() == [rows(notification)[FAKE_KEY].id]
    assert stuck.alert_abandoned() == 1
    assert stuck.alert_abandoned() == 0  # once per delivery
    dispatcher.run_due()
    found = rows(notification)
    assert found[FAKE_KEY].state is DeliveryState.DEAD
    assert found[FAKE_KEY].last_error_code == "lease_expired"
    assert found["email"].state is DeliveryState.SENT
    admin_mail = mails(sandbox, tenants["admin"].email)
    assert len(admin_mail) == 1 and "1" in admin_mail[0]["subject"]
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "delivery.stuck"))
    assert [e.organization_id for e in events] == [tenants["own"].id]


def test_stuck_deliveries_are_shown_on_the_delivery_log_and_support_health(
    app: Any, tenants: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def poisoned(*args: Any, **kwargs: Any) -> Any:
        raise LookupError("template variable missing")

    monkeypatch.setattr(mail, "build", poisoned)
    for n in range(3):
        notify(tenants["member"], title=f"通知{n}")
    drive(2)
    admin = app.test_client()
    admin.login(tenants["admin"])
    page = admin.get("/deliveries").text
    assert 'id="stuck-deliveries"' in page and "LookupError: template variable missing" in page
    support = app.test_client()
    support.login(tenants["support"])
    page = support.get("/support/health?org=demo").text
    assert 'id="stuck-deliveries"' in page and "LookupError" in page
    other = app.test_client()
    other.login(tenants["other_admin"])
    assert 'id="stuck-deliveries"' not in other.get("/deliveries").text  # scoped


def test_a_title_with_line_breaks_written_before_validation_still_mails(
    sandbox: Any, tenants: dict[str, Any]
) -> None:
    """Rows stored before the API refused such titles (the reported 202-then-loop case)."""
    notification = notify(tenants["member"], title="1on1\r\nBcc: all@demo.example\u2028明日")
    dispatcher.run_due()
    assert rows(notification)["email"].state is DeliveryState.SENT
    [received] = mails(sandbox, tenants["member"].email)
    assert "\n" not in received["subject"] and "1on1" in received["subject"]
