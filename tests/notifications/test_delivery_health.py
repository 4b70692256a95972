"""Delivery health: real delivery rows counted by outcome and hour, per chat tool, scoped to one
organization, over exactly the last 168 hours of the company's clock; and both pages that
draw it (外部ツールの連携 and the support console's health page)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from portal.accounts.models import Organization, User
from portal.database import utcnow
from portal.extensions import db
from portal.notifications import delivery_health
from portal.notifications.delivery_health import HOURS, hourly_counts, window
from portal.notifications.models import Delivery, DeliveryState, Notification

SENT, RETRYING, SENDING = DeliveryState.SENT, DeliveryState.RETRYING, DeliveryState.SENDING
FAILED, DEAD = DeliveryState.FAILED, DeliveryState.DEAD
PENDING, SKIPPED = DeliveryState.PENDING, DeliveryState.SKIPPED
TOKYO = ZoneInfo("Asia/Tokyo")
#: 21:30 in Tokyo: the window ends at 22:00 Tokyo (13:00 UTC) and starts 168 hours before.
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
START, END = window(NOW, TOKYO)


def add(
    organization: Organization,
    member: User,
    channel: str,
    state: DeliveryState,
    *,
    at: datetime | None = None,
    attempts: int = 1,
    reason: str | None = None,
    created: datetime | None = None,
    updated: datetime | None = None,
    sent: datetime | None = None,
) -> Delivery:
    """One notification with one delivery, its timestamps set as a worker would leave them:
    ``at`` for whichever the outcome is dated by, the rest no later than the last write."""
    created = created or at or START
    sent = sent or (at if state is DeliveryState.SENT else None)
    updated = updated or max(t for t in (created, sent, at) if t is not None)
    notification = Notification(
        organization_id=organization.id, recipient_id=member.id, title="t", body="b"
    )
    delivery = Delivery(
        organization_id=organization.id,
        channel=channel,
        state=state,
        attempts=attempts,
        reason=reason,
        created_at=created,
        updated_at=updated,
        sent_at=sent,
        next_attempt_at=created,
    )
    notification.deliveries.append(delivery)
    db.session.add(notification)
    db.session.commit()
    return delivery


def hour(index: int, minutes: int = 0) -> datetime:
    return START + timedelta(hours=index, minutes=minutes)


def counted(organization: Organization) -> dict[str, dict[int, dict[str, int]]]:
    """Tool → hour → outcome → count, only the hours that have something."""
    return {
        tool: {i: dict(c) for i, c in enumerate(hours) if c}
        for tool, hours in hourly_counts(organization.id, START).items()
    }


def test_window_is_168_hours_ending_with_the_current_local_hour() -> None:
    assert START.isoformat() == "2026-03-03T13:00:00+00:00"
    assert END.isoformat() == "2026-03-10T13:00:00+00:00"  # 22:00 in Tokyo
    assert END - START == timedelta(hours=HOURS) == timedelta(days=7)
    # With a half-hour offset the hours start at :30 UTC, so bars follow the local clock.
    start, end = window(NOW, ZoneInfo("Asia/Kolkata"))
    assert end == datetime(2026, 3, 10, 12, 30, tzinfo=UTC) + timedelta(hours=1)
    assert end.astimezone(ZoneInfo("Asia/Kolkata")).minute == 0
    assert end - start == timedelta(hours=HOURS)


def test_each_outcome_is_counted_once_in_the_hour_of_its_own_timestamp(
    tenants: dict[str, Any],
) -> None:
    own, member = tenants["own"], tenants["member"]
    put = partial(add, own, member)
    before = START - timedelta(days=2)
    # Sent: at sent_at, however long ago the notification was made.
    put("slack", SENT, at=hour(5, 10), created=before)
    put("slack", SENT, at=hour(5, 59))
    # Retried: sent after more than one attempt; or still trying (retrying; or a later attempt
    # under way), at the last write.
    put("slack", SENT, at=hour(6), attempts=3)
    put("slack", RETRYING, at=hour(7), attempts=2, created=before)
    put("slack", RETRYING, at=hour(7), attempts=0)  # paced
    put("slack", SENDING, at=hour(7), attempts=4)
    # Failed: failed or dead, when it ended.
    put("slack", FAILED, updated=hour(8, 30), created=hour(8))
    put("slack", DEAD, updated=hour(9), created=before, attempts=10)
    # E-mail fallback: counted under the chat tool it replaced, when it was made.
    put("email", SENT, reason="fallback:slack:token_revoked", created=hour(8, 30), sent=hour(10))
    put("email", PENDING, reason="fallback:chatwork:http_403", created=hour(9), attempts=0)
    # Held: quiet hours, a digest, an unconfirmed link; when held.
    put("slack", PENDING, reason="held_quiet_hours", created=hour(11), attempts=0)
    put("slack", SKIPPED, reason="digest_pending", created=hour(11, 20), attempts=0)
    put("teams", SKIPPED, reason="held_unconfirmed", created=hour(12), attempts=0)
    # E-mail on its own (not linked): an e-mail series of its own.
    put("email", SENT, at=hour(13), reason="not_linked")
    # Not an outcome: a first attempt under way, turned off, listed in a digest.
    put("slack", PENDING, at=hour(14), attempts=0)
    put("slack", SENDING, at=hour(14), attempts=1)
    put("slack", SKIPPED, at=hour(14), reason="member_off")
    put("slack", SKIPPED, at=hour(14), reason="digested:7")

    assert counted(own) == {
        "slack": {
            5: {"sent": 2},
            6: {"retried": 1},
            7: {"retried": 3},
            8: {"failed": 1, "fallback": 1},
            9: {"failed": 1},
            11: {"held": 2},
        },
        "chatwork": {9: {"fallback": 1}},
        "teams": {12: {"held": 1}},
        "email": {13: {"sent": 1}},
    }


def test_a_held_row_counts_when_held_and_a_released_one_when_sent(
    tenants: dict[str, Any],
) -> None:
    own, member = tenants["own"], tenants["member"]
    put = partial(add, own, member)
    # Held 8 days ago and still waiting (a weekly digest): its hour is before the window.
    put(
        "slack",
        SKIPPED,
        reason="digest_pending",
        created=START - timedelta(days=1),
        updated=hour(3),
        attempts=0,
    )
    # Held at hour 100 (overnight), sent at hour 110: only the sending counts.
    put("slack", SENT, reason="held_quiet_hours", created=hour(100), at=hour(110))
    assert counted(own) == {"slack": {110: {"sent": 1}}}


def test_another_organizations_deliveries_never_count(tenants: dict[str, Any]) -> None:
    own, other = tenants["own"], tenants["other"]
    add(own, tenants["member"], "slack", SENT, at=hour(1))
    add(other, tenants["other_member"], "slack", SENT, at=hour(1))
    add(other, tenants["other_member"], "slack", FAILED, at=hour(2))
    add(other, tenants["other_member"], "email", SENT, at=hour(2), reason="fallback:teams:http_403")
    assert counted(own) == {"slack": {1: {"sent": 1}}}
    assert counted(other) == {
        "slack": {1: {"sent": 1}, 2: {"failed": 1}},
        "teams": {2: {"fallback": 1}},
    }


def test_window_edges_first_instant_in_last_instant_in_one_microsecond_out(
    tenants: dict[str, Any],
) -> None:
    own, member = tenants["own"], tenants["member"]
    put = partial(add, own, member)
    tick = timedelta(microseconds=1)
    put("slack", SENT, at=START - tick)
    put("slack", SENT, at=START)
    put("slack", SENT, at=hour(1) - tick)
    put("slack", SENT, at=hour(1))
    put("slack", SENT, at=END - tick)
    put("slack", SENT, at=END)
    assert counted(own) == {"slack": {0: {"sent": 2}, 1: {"sent": 1}, HOURS - 1: {"sent": 1}}}


def test_days_and_hours_in_the_company_zone_add_up_to_the_totals(
    app: Any, tenants: dict[str, Any]
) -> None:
    own, member = tenants["own"], tenants["member"]
    put = partial(add, own, member)
    own.time_zone = "Asia/Kolkata"
    db.session.commit()
    kolkata = ZoneInfo("Asia/Kolkata")
    start, _end = window(NOW, kolkata)
    # 23:30 and 00:30 the next day in Kolkata: two days, although the same UTC date.
    late = datetime(2026, 3, 8, 23, 30, tzinfo=kolkata)
    put("slack", SENT, at=late)
    put("slack", FAILED, updated=late + timedelta(hours=1), created=late)
    put("email", SENT, at=late, reason="not_linked")
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        health = delivery_health.for_organization(own, now=NOW)
    assert (health.zone, health.offset) == ("Asia/Kolkata", "UTC+05:30")
    assert health.start == start
    assert [t.tool for t in health.tools] == ["slack", "email"]  # chat tools first
    slack = health.tools[0]
    assert slack.name == "Slack"
    assert dict(slack.totals.counts) == {"sent": 1, "failed": 1}
    assert sum(row.total for row in slack.days) == slack.totals.total == 2
    by_day = {row.label: dict(row.counts) for row in slack.days if row.counts}
    assert by_day == {"Sun, Mar 8": {"sent": 1}, "Mon, Mar 9": {"failed": 1}}
    assert [(row.label, dict(row.counts)) for row in slack.hours] == [
        ("Sun, Mar 8 23:00–00:00", {"sent": 1}),
        ("Mon, Mar 9 00:00–01:00", {"failed": 1}),
    ]
    # One tick per local midnight, at that hour's column.
    ticks = slack.chart.ticks
    assert len(ticks) == 7 and ticks[0].label == "Wed, 3/4"
    assert [c.index for c in slack.chart.columns] == [
        slack.hour_labels.index(row.label) for row in slack.hours
    ]
    assert [c.marked for c in slack.chart.columns] == [False, True]


def _svg(page: str, tool: str) -> str:
    match = re.search(
        rf'<section class="health-tool" id="delivery-health-{tool}".*?</svg>', page, re.S
    )
    assert match, f"no chart for {tool}"
    return match.group(0)


@pytest.mark.parametrize(
    ("who", "url"),
    [("admin", "/settings/integrations"), ("support", "/support/health?org=demo")],
)
def test_both_pages_draw_the_chart_and_the_tables(
    client: Any, tenants: dict[str, Any], who: str, url: str
) -> None:
    own, member = tenants["own"], tenants["member"]
    put = partial(add, own, member)
    now = utcnow()
    put("slack", SENT, at=now - timedelta(hours=5))
    put("slack", SENT, at=now - timedelta(hours=3))
    put("slack", DEAD, updated=now - timedelta(hours=1), created=now - timedelta(hours=4))
    # Another organization's Chatwork: no chart for it on this organization's pages.
    add(tenants["other"], tenants["other_member"], "chatwork", SENT, at=now)
    client.login(tenants[who])
    response = client.get(url)
    assert response.status_code == 200
    page = response.text
    assert 'id="delivery-health"' in page
    svg = _svg(page, "slack")
    assert 'role="img"' in svg and 'aria-labelledby="delivery-health-slack-title' in svg
    assert re.search(r'<title id="delivery-health-slack-title">[^<]*Slack', svg)
    # Two sent and one failed, each in an hour of its own: three bars, the failure marked.
    assert svg.count('class="outcome-sent"') == 2 and svg.count('class="outcome-failed"') == 1
    assert svg.count('<g class="health-hour"') == 3
    assert 'class="health-mark"' in svg
    assert "style=" not in page[page.index('id="delivery-health"') :]  # the CSP forbids it
    days = re.search(
        r'<table class="table health-table" id="delivery-health-slack-days">.*?</table>', page, re.S
    )
    assert days and "<caption>" in days.group(0)
    assert re.search(
        r"<tfoot><tr><th scope=\"row\">[^<]+</th><td>2</td><td>0</td><td>1</td>", days.group(0)
    )
    hours = re.search(r'id="delivery-health-slack-hours">.*?</table>', page, re.S)
    assert hours and hours.group(0).count('<th scope="row">') == 3
    assert "delivery-health-chatwork" not in page
    assert "delivery-health-empty" not in page


def test_without_deliveries_the_pages_say_so(client: Any, tenants: dict[str, Any]) -> None:
    add(tenants["other"], tenants["other_member"], "slack", SENT, at=utcnow())
    client.login(tenants["admin"])
    page = client.get("/settings/integrations").text
    assert 'id="delivery-health-empty"' in page
    assert '<svg class="health-chart"' not in page
