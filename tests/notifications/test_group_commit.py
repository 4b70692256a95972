"""Outcomes written as a group: :class:`portal.outbox.GroupCommit` and ``Outbox.finish_many``.

The dispatcher's threads record the messages that went out together (one statement, one
commit); each row must still get its own message id and time, a row whose lease another
worker took must be left alone, and a failed write must reach every thread whose row it held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, inspect, select

from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import ChatAccount
from portal.integrations.providers.base import DeliveryResult, Message, PacingBudget
from portal.integrations.registry import providers
from portal.notifications import dispatcher, pacing, services
from portal.notifications.models import Delivery, DeliveryState
from portal.outbox import GroupCommit
from tests.notifications.helpers import FAKE_KEY, ScriptedProvider


def _eventually(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_items_queued_while_a_write_runs_are_written_together() -> None:
    writes: list[list[int]] = []
    first_write_may_end = threading.Event()

    def write(items: list[int]) -> None:
        writes.append(list(items))
        if len(writes) == 1:
            first_write_may_end.wait(5)

    group: GroupCommit[int] = GroupCommit(write)
    first = threading.Thread(target=group.submit, args=(0,))
    first.start()
    _eventually(lambda: len(writes) == 1)
    others = [threading.Thread(target=group.submit, args=(n,)) for n in range(1, 6)]
    for thread in others:
        thread.start()
    _eventually(lambda: len(group._queued) == 5)  # all five wait behind the running write
    first_write_may_end.set()
    for thread in [first, *others]:
        thread.join(5)
    assert writes[0] == [0]
    assert sorted(writes[1]) == [1, 2, 3, 4, 5]  # one write for the five, not five
    assert len(writes) == 2


def test_a_failed_write_is_raised_in_every_thread_of_its_group() -> None:
    calls = 0

    def write(items: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")

    group: GroupCommit[str] = GroupCommit(write)
    with pytest.raises(RuntimeError, match="went away"):
        group.submit("a")
    group.submit("b")  # the next group is written as usual
    assert calls == 2


@pytest.fixture
def named_provider() -> Iterator[ScriptedProvider]:
    """The scripted provider answering each DM with an id naming its recipient, slowly enough
    (20 ms) that the dispatcher's threads finish their sends together."""

    class Named(ScriptedProvider):
        def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
            time.sleep(0.02)
            return DeliveryResult(provider_message_id=f"msg-{account.external_id}")

    providers.register(Named)
    provider = providers.get(FAKE_KEY)
    assert isinstance(provider, ScriptedProvider)
    yield provider
    providers.unregister(FAKE_KEY)


def test_each_row_of_a_group_gets_its_own_message_id(
    app: Any,
    tenants: dict[str, Any],
    named_provider: Any,
    link_member: Any,
    make_user: Any,
) -> None:
    app.config["DELIVERY_CONCURRENCY"] = 8
    members = [make_user(tenants["own"]) for _ in range(24)]
    for member in members:
        link_member(member, f"U{member.id}")
    for member in members:
        services.create_notification(tenants["own"], member, title="目標の更新", body="本文")
    db.session.commit()
    statements: list[str] = []
    engine = db.engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "provider_message_id=CASE" in statement:  # an outcome statement for a group
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert dispatcher.run_due() == 24
    finally:
        event.remove(engine, "before_cursor_execute", count)
    db.session.expire_all()
    rows = db.session.execute(
        select(Delivery, ChatAccount).join(ChatAccount, ChatAccount.id == Delivery.chat_account_id)
    ).all()
    assert len(rows) == 24
    for delivery, account in rows:
        assert delivery.state is DeliveryState.SENT
        assert delivery.provider_message_id == f"msg-{account.external_id}"
        assert delivery.locked_by is None and delivery.sent_at is not None
    assert 1 <= len(statements) < 24  # grouped: fewer outcome statements than messages


def test_finish_many_leaves_a_row_whose_lease_another_worker_holds(
    tenants: dict[str, Any],
) -> None:
    member = tenants["member"]
    for n in range(3):
        services.create_notification(tenants["own"], member, title=f"通知 {n}", body="本文")
    db.session.commit()
    ids = dispatcher.claim(10, "worker-a")
    assert len(ids) == 3
    taken = ids[0]
    db.session.get(Delivery, taken).locked_by = "worker-b"  # its lease ran out and b claimed it
    db.session.commit()
    moments = {row_id: utcnow() - timedelta(seconds=n) for n, row_id in enumerate(ids)}
    held = dispatcher.OUTBOX.finish_many(
        "worker-a",
        {i: {"provider_message_id": f"m{i}", "sent_at": moments[i]} for i in ids},
        state=DeliveryState.SENT,
    )
    assert held == set(ids[1:])
    db.session.expire_all()
    for row_id in ids[1:]:
        row = db.session.get(Delivery, row_id)
        assert row is not None
        assert row.state is DeliveryState.SENT and row.provider_message_id == f"m{row_id}"
        assert row.sent_at == moments[row_id]  # its own time, stored as its column stores one
    other = db.session.get(Delivery, taken)
    assert other is not None
    assert other.state is DeliveryState.SENDING and other.locked_by == "worker-b"
    assert other.provider_message_id is None


def test_taking_a_token_leaves_the_loaded_delivery_as_loaded(tenants: dict[str, Any]) -> None:
    """A reservation's commit must not expire the rows a send loaded: each would be read again,
    one query apiece, when the message is built from it."""
    services.create_notification(tenants["own"], tenants["member"], title="通知", body="本文")
    db.session.commit()
    delivery = db.session.scalars(select(Delivery)).first()
    assert delivery is not None
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        queries.append(statement)

    budget = PacingBudget("bench:loaded", rate=100.0, burst=10)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert pacing.take_batch(budget, utcnow())[1] >= 1
        taken = len(queries)
        assert delivery.state is DeliveryState.PENDING and delivery.channel == "email"
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert not inspect(delivery).expired_attributes
    assert len(queries) == taken  # reading the delivery cost no query
    pacing.limited(budget, 1.0)  # a 429's commit keeps them too
    assert not inspect(delivery).expired_attributes
