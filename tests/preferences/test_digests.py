"""Digests (issue 16 item 5): a category received "daily at 18:00" or "weekly" is held and
becomes one notification listing each title and link (20 at most, then "and N more"), in the
member's language, routed like any other; urgent skips it; the member's own choice beats the
company's; a worker SIGKILLed again and again while building leaves each member exactly one
digest per window."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import func, insert, select

from portal.database import utcnow
from portal.extensions import db
from portal.notifications import dispatcher, services
from portal.notifications.models import Delivery, DeliveryState, Notification
from portal.preferences import categories, digests, hours
from portal.preferences.windows import DigestSchedule
from tests.notifications.test_workers import start_worker

TOKYO = ZoneInfo("Asia/Tokyo")


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def test_the_next_digest_time() -> None:
    daily = DigestSchedule(TOKYO, "daily", datetime(2026, 1, 1, 18, 0).time())
    assert daily.next_at(jst(2026, 12, 2, 17, 59)) == jst(2026, 12, 2, 18, 0)
    assert daily.next_at(jst(2026, 12, 2, 18, 0)) == jst(2026, 12, 3, 18, 0)
    weekly = DigestSchedule(TOKYO, "weekly", datetime(2026, 1, 1, 9, 0).time(), weekday=5)
    assert weekly.next_at(jst(2026, 12, 2, 12, 0)) == jst(2026, 12, 4, 9, 0)  # Wed → Fri
    assert weekly.next_at(jst(2026, 12, 4, 9, 0)) == jst(2026, 12, 11, 9, 0)


def daily_feedback(tenants: dict[str, Any], at: str = "18:00") -> Any:
    feedback = categories.find(tenants["own"], "feedback")
    assert feedback is not None
    feedback.digest, feedback.digest_time = "daily", at
    db.session.commit()
    return feedback


def notify(tenants: dict[str, Any], title: str, **extra: Any) -> Notification:
    notification, _new = services.create_notification(
        tenants["own"],
        tenants["member"],
        title=title,
        body="本文",
        url=f"https://hr.example/{len(title)}",
        category=extra.pop("category", None),
        **extra,
    )
    db.session.commit()
    return notification


def test_a_days_feedback_becomes_one_digest_at_six(sandbox: Any, tenants: dict[str, Any]) -> None:
    feedback = daily_feedback(tenants)
    with time_machine.travel(jst(2026, 12, 2, 10, 0), tick=False):
        items = [notify(tenants, f"フィードバック{n}", category=feedback) for n in range(3)]
        urgent = notify(tenants, "急ぎ", category=feedback, urgent=True)
        general = notify(tenants, "一般のお知らせ")
        assert [d.reason for d in urgent.deliveries] == ["not_linked"]
        assert [d.reason for d in general.deliveries] == ["not_linked"]
        for item in items:
            [row] = item.deliveries
            assert (row.state, row.reason) == (DeliveryState.SKIPPED, "digest_pending")
            assert row.next_attempt_at == jst(2026, 12, 2, 18, 0).astimezone(UTC)
        assert digests.build_due() == 0
    with time_machine.travel(jst(2026, 12, 2, 18, 0, 5), tick=False):
        assert digests.build_due() == 1
        assert digests.build_due() == 0  # once per window
        dispatcher.run_due()
    digest = db.session.scalar(
        select(Notification).where(Notification.idempotency_key.like("digest:%"))
    )
    assert digest is not None
    assert digest.title == "フィードバックのまとめ（3件）"
    assert "・フィードバック0" in digest.body and "https://hr.example/" in digest.body
    assert digest.deliveries[0].state is DeliveryState.SENT
    db.session.expire_all()
    reasons = {d.reason for item in items for d in db.session.get(Notification, item.id).deliveries}  # type: ignore[union-attr]
    assert reasons == {f"digested:{digest.id}"}
    mail = sandbox.control("GET", f"/_control/mail?to={tenants['member'].email}")
    assert any(m["subject"] == "フィードバックのまとめ（3件）" for m in mail)


def test_twenty_five_are_listed_as_twenty_and_five_more_in_english(
    tenants: dict[str, Any],
) -> None:
    feedback = daily_feedback(tenants)
    tenants["member"].locale = "en"
    db.session.commit()
    with time_machine.travel(jst(2026, 12, 2, 10, 0), tick=False):
        for n in range(25):
            notify(tenants, f"item {n:02d}", category=feedback)
    with time_machine.travel(jst(2026, 12, 2, 18, 1), tick=False):
        assert digests.build_due() == 1
    digest = db.session.scalar(
        select(Notification).where(Notification.idempotency_key.like("digest:%"))
    )
    assert digest is not None and digest.title == "Feedback: 25 notifications"
    assert (
        digest.body.count("・") == 20 and "item 19" in digest.body and "item 20" not in digest.body
    )
    assert "…and 5 more" in digest.body and digest.url and digest.url.endswith("/me/accounts")


def test_the_members_own_digest_beats_the_companys(
    tenants: dict[str, Any], member_client: Any
) -> None:
    goals = categories.find(tenants["own"], "goals")
    assert goals is not None
    answer = member_client.post_form(
        "/me/preferences",
        {
            f"c{goals.id}_digest": "weekly",
            f"c{goals.id}_digest_time": "08:30",
            f"c{goals.id}_digest_weekday": "5",
        },
    )
    assert answer.status_code == 302
    schedule = hours.schedule_for(tenants["member"], tenants["own"], goals)
    assert schedule is not None and (schedule.mode, schedule.weekday) == ("weekly", 5)
    assert "のまとめ通知に入ります" in member_client.get("/me/preferences").text
    bad = member_client.post_form(
        "/me/preferences", {f"c{goals.id}_digest": "daily", f"c{goals.id}_digest_time": "25:00"}
    )
    assert bad.status_code == 422
    member_client.post_form("/me/preferences", {f"c{goals.id}_digest": "company"})
    assert hours.schedule_for(tenants["member"], tenants["own"], goals) is None


def test_sigkilled_workers_build_exactly_one_digest_per_member(
    app: Any, sandbox: Any, tenants: dict[str, Any], make_user: Any, tmp_path: Path
) -> None:
    """400 members with 3 held feedback notifications each, due now; a real worker builds
    the digests and is SIGKILLed mid-way, up to five times."""
    feedback = daily_feedback(tenants)
    members = [make_user(tenants["own"]) for _ in range(400)]
    due = utcnow() - timedelta(minutes=1)
    ids = (
        db.session.execute(
            insert(Notification).returning(Notification.id),
            [
                {
                    "organization_id": tenants["own"].id,
                    "recipient_id": member.id,
                    "title": f"フィードバック {n}",
                    "body": "本文",
                    "category_id": feedback.id,
                    "created_at": due,
                    "sensitive": False,
                    "urgent": False,
                }
                for member in members
                for n in range(3)
            ],
        )
        .scalars()
        .all()
    )
    db.session.execute(
        insert(Delivery),
        [
            {
                "notification_id": notification_id,
                "organization_id": tenants["own"].id,
                "channel": "email",
                "state": DeliveryState.SKIPPED,
                "reason": hours.DIGEST_PENDING,
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": due,
                "updated_at": due,
            }
            for notification_id in ids
        ],
    )
    db.session.commit()

    def pending() -> int:
        db.session.rollback()
        return int(
            db.session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.reason == hours.DIGEST_PENDING)
            )
            or 0
        )

    kills = 0
    deadline = time.monotonic() + 180
    while pending() and time.monotonic() < deadline:
        worker = start_worker(app, tmp_path, f"k{kills}")
        before = pending()
        try:
            # SIGKILL as soon as this worker has built some digests but not all (five times).
            while time.monotonic() < deadline and (left := pending()):
                if kills < 5 and left < before:
                    worker.kill()
                    kills += 1
                    break
                time.sleep(0.05)
        finally:
            if worker.poll() is None:
                worker.terminate()
            worker.wait(timeout=20)
    assert pending() == 0 and kills >= 3
    per_member = dict(  # (a Result has .keys(): dict() needs the rows as a list)
        list(
            db.session.execute(
                select(Notification.recipient_id, func.count())
                .where(Notification.idempotency_key.like("digest:%"))
                .group_by(Notification.recipient_id)
            ).tuples()
        )
    )
    assert per_member == {member.id: 1 for member in members}
    digest_of = dict(
        list(
            db.session.execute(
                select(Notification.recipient_id, Notification.id).where(
                    Notification.idempotency_key.like("digest:%")
                )
            ).tuples()
        )
    )
    for member_id, notification_id, reason in db.session.execute(
        select(Notification.recipient_id, Notification.id, Delivery.reason)
        .join(Delivery, Delivery.notification_id == Notification.id)
        .where(Notification.id.in_(ids))
    ).tuples():
        assert reason == f"digested:{digest_of[member_id]}", notification_id
