"""Delivery health in the browser (issue 17 item 6): a week of デモ株式会社's deliveries drawn
on 外部ツールの連携 for the admin and on the support console's health page for support staff —
the chart, its legend and its tables visible, and no Content-Security-Policy violation (the
fixture fails the test on any)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select

from portal.accounts.models import Organization, User
from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import Delivery, DeliveryState, Notification
from tests.e2e.conftest import Portal, browser_tab, login, open_integrations, screenshot

SUPPORT = "support@chat-connect.example"
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def support_page(browser: Any, portal_url: str) -> Iterator[Any]:
    yield from browser_tab(browser, portal_url)


def seed_week(portal: Portal) -> None:
    """A week of deliveries: Slack DMs through the day, a few retried or failed (each failure
    with its e-mail fallback), some held overnight, and e-mails to members without a chat
    account."""
    with portal.app.app_context():
        organization = db.session.scalar(select(Organization).filter_by(slug="demo"))
        assert organization is not None
        members = db.session.scalars(
            select(User.id).where(User.organization_id == organization.id)
        ).all()
        now = utcnow()
        plan: list[tuple[str, DeliveryState, int, str | None, timedelta]] = []
        for hours_ago in range(1, 7 * 24):
            ago = timedelta(hours=hours_ago, minutes=7)
            busy = 9 <= (now - ago).astimezone(TOKYO).hour < 19
            plan += [("slack", DeliveryState.SENT, 1, None, ago)] * (4 if busy else 1)
            plan += [("email", DeliveryState.SENT, 1, "not_linked", ago)] * (2 if busy else 0)
            if hours_ago % 5 == 0:
                plan.append(("slack", DeliveryState.SENT, 3, None, ago))
            if hours_ago % 17 == 0:
                plan.append(("slack", DeliveryState.FAILED, 1, None, ago))
                plan.append(("email", DeliveryState.SENT, 1, "fallback:slack:user_disabled", ago))
            if not busy:
                plan.append(("slack", DeliveryState.PENDING, 0, "held_quiet_hours", ago))
        notification_ids = (
            db.session.execute(
                insert(Notification).returning(Notification.id),
                [
                    {
                        "organization_id": organization.id,
                        "recipient_id": members[n % len(members)],
                        "title": f"週次のお知らせ {n}",
                        "body": "本文",
                        "sensitive": False,
                    }
                    for n in range(len(plan))
                ],
            )
            .scalars()
            .all()
        )
        rows = []
        for notification_id, (channel, state, attempts, reason, ago) in zip(
            notification_ids, plan, strict=True
        ):
            at = now - ago
            rows.append(
                {
                    "notification_id": notification_id,
                    "organization_id": organization.id,
                    "channel": channel,
                    "state": state,
                    "attempts": attempts,
                    "reason": reason,
                    "created_at": at - timedelta(minutes=1),
                    "updated_at": at,
                    "sent_at": at if state is DeliveryState.SENT else None,
                    "next_attempt_at": at + timedelta(days=30),  # never due for the worker
                }
            )
        db.session.execute(insert(Delivery), rows)
        db.session.commit()


def check_chart(page: Any, name: str) -> None:
    section = page.locator("#delivery-health")
    expect(section).to_be_visible()
    slack = page.locator("#delivery-health-slack")
    chart = slack.locator("svg.health-chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("title").first).to_contain_text("Slack")
    assert chart.locator("rect.outcome-sent").count() > 100
    assert chart.locator("rect.outcome-failed").count() >= 9
    assert chart.locator(".health-mark").count() >= 9
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 100  # drawn, not collapsed
    # Colours come from portal.css classes: a sent bar and a failed one differ.
    fills = chart.evaluate(
        """svg => ['sent', 'failed', 'fallback'].map(o =>
             getComputedStyle(svg.querySelector('rect.outcome-' + o)).fill)"""
    )
    assert len(set(fills)) == 3, fills
    expect(slack.locator(".health-legend")).to_be_visible()
    days = slack.locator("table.health-table").first
    expect(days).to_be_visible()
    expect(days.locator("caption")).to_contain_text("Slack")
    assert days.locator("tbody tr").count() in (7, 8)  # a partial first day, or not
    full = screenshot(page, name)
    slack.screenshot(path=str(full.with_name(f"{name}-slack.png")))
    hourly = slack.locator("details.health-hours")
    expect(hourly.locator("table")).to_be_hidden()
    hourly.locator("summary").click()
    expect(hourly.locator("table")).to_be_visible()
    expect(page.locator("#delivery-health-email svg")).to_be_visible()


def test_admin_and_support_see_a_week_of_delivery_health(
    page: Any, support_page: Any, portal: Portal
) -> None:
    seed_week(portal)
    open_integrations(page)
    check_chart(page, "delivery-health-1-integrations")

    login(support_page, SUPPORT)
    support_page.goto("/support/health?org=demo")
    check_chart(support_page, "delivery-health-2-support")
