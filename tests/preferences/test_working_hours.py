"""Quiet hours (issue 16 item 4): the window in the member's own zone across midnight, a
weekend, a Japanese public holiday and a DST change in America/New_York; a held delivery is
pending, due at the window's start, released by the worker then and not before; urgent goes
at once; bad settings (25:00, a zone that does not exist, no working day) save nothing."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.notifications import dispatcher, services
from portal.notifications.models import Delivery, DeliveryState
from portal.preferences import hours
from portal.preferences.windows import Window, is_holiday, parse_clock

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        (jst(2026, 12, 2, 12, 0), None),  # Wednesday noon: open
        (jst(2026, 12, 2, 8, 59), jst(2026, 12, 2, 9, 0)),  # a minute early
        (jst(2026, 12, 2, 19, 0), jst(2026, 12, 3, 9, 0)),  # closing time: tomorrow
        (jst(2026, 12, 2, 23, 59), jst(2026, 12, 3, 9, 0)),  # across midnight
        (jst(2026, 12, 4, 20, 0), jst(2026, 12, 7, 9, 0)),  # Friday evening → Monday
        (jst(2026, 12, 5, 10, 0), jst(2026, 12, 7, 9, 0)),  # Saturday
        (jst(2026, 11, 23, 10, 0), jst(2026, 11, 24, 9, 0)),  # 勤労感謝の日 (Monday)
        (jst(2026, 12, 31, 20, 0), jst(2027, 1, 4, 9, 0)),  # 元日, then the weekend
    ],
)
def test_the_company_window_in_tokyo(now: datetime, opens: datetime | None) -> None:
    window = Window(TOKYO)
    assert window.next_open(now.astimezone(UTC)) == (opens.astimezone(UTC) if opens else None)


def test_holidays_come_from_the_maintained_calendar() -> None:
    assert is_holiday(jst(2026, 11, 23).date()) and is_holiday(jst(2027, 1, 1).date())
    assert not is_holiday(jst(2026, 12, 2).date())
    holidays_on = Window(TOKYO, holidays_off=False)
    assert holidays_on.next_open(jst(2026, 11, 23, 10, 0).astimezone(UTC)) is None


def test_new_york_across_the_dst_change() -> None:
    window = Window(NEW_YORK, holidays_off=False)
    # Friday 6 March 2026, 20:00 EST → Monday 9 March 09:00 EDT (clocks sprang forward on
    # Sunday the 8th): 13:00 UTC, not 14:00.
    friday = datetime(2026, 3, 6, 20, 0, tzinfo=NEW_YORK)
    assert window.next_open(friday.astimezone(UTC)) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    # And back: Friday 30 October 20:00 EDT → Monday 2 November 09:00 EST = 14:00 UTC.
    autumn = datetime(2026, 10, 30, 20, 0, tzinfo=NEW_YORK)
    assert window.next_open(autumn.astimezone(UTC)) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    # 09:00 JST Wednesday is 19:00 EST Tuesday: closed for a New Yorker.
    assert window.next_open(jst(2026, 12, 2, 9, 0).astimezone(UTC)) is not None


def test_a_member_narrows_but_never_widens_the_company_hours() -> None:
    window = Window(TOKYO)
    assert window.narrowed(time(10, 0), time(17, 0)) == Window(TOKYO, start=time(10), end=time(17))
    assert window.narrowed(time(7, 0), time(22, 0)) == window
    assert window.narrowed(time(18, 0), time(10, 0)) == window  # nonsense: the company's


@pytest.mark.parametrize("value", ["25:00", "24:00", "9:00", "09:60", "９:００", "", None, 900])
def test_times_that_do_not_exist_are_refused(value: object) -> None:
    assert parse_clock(value) is None


def quiet(tenants: dict[str, Any]) -> Any:
    organization = tenants["own"]
    organization.quiet_hours_on = True
    db.session.commit()
    return organization


def notify(tenants: dict[str, Any], **extra: Any) -> Delivery:
    notification, _new = services.create_notification(
        tenants["own"], tenants["member"], title="目標の更新", body="本文", **extra
    )
    db.session.commit()
    return notification.deliveries[0]


def test_a_notification_at_night_waits_until_nine_and_the_worker_sends_it_then(
    app: Any, sandbox: Any, tenants: dict[str, Any]
) -> None:
    quiet(tenants)
    with time_machine.travel(jst(2026, 12, 2, 22, 30), tick=False):
        delivery = notify(tenants)
        assert delivery.state is DeliveryState.PENDING and delivery.reason == "held_quiet_hours"
        assert delivery.next_attempt_at == jst(2026, 12, 3, 9, 0).astimezone(UTC)
        assert dispatcher.run_due() == 0  # not before
        urgent = notify(tenants, urgent=True, idempotency_key="urgent-1")
        assert urgent.reason == "not_linked" and dispatcher.run_due() == 1
    with time_machine.travel(jst(2026, 12, 3, 8, 59), tick=False):
        assert dispatcher.run_due() == 0
    with time_machine.travel(jst(2026, 12, 3, 9, 0, 30), tick=False):
        assert dispatcher.run_due() == 1
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).state is DeliveryState.SENT  # type: ignore[union-attr]


def test_the_member_page_and_the_log_say_until_when(
    app: Any, tenants: dict[str, Any], member_client: Any
) -> None:
    quiet(tenants)
    with time_machine.travel(jst(2026, 12, 5, 10, 0), tick=False):  # Saturday
        notify(tenants)
    page = member_client.get("/me/accounts").text  # (the session would be idle in 3 days)
    assert "勤務時間外のため" in page and "12/07" in page and "JST" in page


def test_the_members_own_zone_and_hours_decide(
    app: Any, tenants: dict[str, Any], member_client: Any
) -> None:
    quiet(tenants)
    answer = member_client.post_form(
        "/me/preferences/hours",
        {"time_zone": "America/New_York", "work_start": "10:00", "work_end": "16:00"},
    )
    assert answer.status_code == 302
    member = tenants["member"]
    db.session.refresh(member)
    assert hours.member_zone(member, tenants["own"]) == ("America/New_York", "member")
    # 09:00 JST Thursday = 19:00 EST Wednesday → Thursday 10:00 EST.
    with time_machine.travel(jst(2026, 12, 3, 9, 0), tick=False):
        delivery = notify(tenants)
    assert delivery.next_attempt_at == datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
    assert "America/New_York" in member_client.get("/me/preferences").text


@pytest.mark.parametrize(
    "data",
    [
        {"time_zone": "Mars/Olympus"},
        {"time_zone": "../etc/passwd"},
        {"work_start": "25:00", "work_end": "18:00"},
        {"work_start": "10:00"},
        {"work_start": "18:00", "work_end": "10:00"},
    ],
)
def test_bad_member_hours_save_nothing(
    tenants: dict[str, Any], member_client: Any, data: dict[str, str]
) -> None:
    answer = member_client.post_form("/me/preferences/hours", data)
    assert answer.status_code == 302
    member = tenants["member"]
    db.session.refresh(member)
    assert (member.time_zone, member.work_start, member.work_end) == (None, None, None)
    page = member_client.get("/me/preferences").text
    assert 'class="flash error"' in page or "error" in page


def test_an_admin_sets_the_company_hours_all_or_nothing(
    tenants: dict[str, Any], admin_client: Any
) -> None:
    organization = tenants["own"]
    good = {
        "quiet_hours_on": "on",
        "time_zone": "Asia/Tokyo",
        "work_days": ["1", "2", "3", "4"],
        "work_start": "08:30",
        "work_end": "17:30",
        "holidays_off": "on",
    }
    for bad in (
        {"work_start": "25:00"},
        {"time_zone": "Asia/Atlantis"},
        {"work_days": []},
        {"work_end": "08:00"},
    ):
        admin_client.post_form("/settings/notification-policy/hours", {**good, **bad})
        db.session.refresh(organization)
        assert (organization.quiet_hours_on, organization.work_start) == (False, "09:00"), bad
    admin_client.post_form("/settings/notification-policy/hours", good)
    db.session.refresh(organization)
    assert (organization.work_days, organization.work_start, organization.work_end) == (
        "1234",
        "08:30",
        "17:30",
    )
    assert organization.quiet_hours_on
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "organization.hours_changed")
    )
    assert event is not None and event.after["work_days"] == "1234"
    assert 'id="company-hours"' in admin_client.get("/settings/notification-policy").text
