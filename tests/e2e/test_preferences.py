"""What arrives, where and when, click by click (issue 16): the admin sets feedback to a daily
digest at 18:00, makes surveys required and turns working hours on; a member sees that, sends
goals by e-mail only and narrows their hours to 10:00–18:00; the host app sends a goal update
at 22:00 and two feedback notifications at 10:00 — with the clock moved, the goal update
arrives at 10:00 (not before) and one digest listing both feedbacks at 18:00."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts.models import Organization
from portal.extensions import db
from portal.notifications import api_keys
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import Portal, browser_tab, login, open_system_menu, screenshot, settled

MEMBER = "member01@demo.example"
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def member_page(browser: Any, portal_url: str) -> Iterator[Any]:
    yield from browser_tab(browser, portal_url)


def api_key(portal: Portal) -> str:
    with portal.app.app_context():
        organization = db.session.scalar(select(Organization).filter_by(slug="demo"))
        assert organization is not None
        _row, key = api_keys.create(organization, "e2e", actor=None)
        return key


def test_categories_preferences_working_hours_and_a_digest(
    page: Any, member_page: Any, sandbox: RunningSandbox, portal: Portal
) -> None:
    login(page, "admin@demo.example")
    open_system_menu(page, "通知カテゴリ")
    page.wait_for_url("**/settings/notification-categories")
    settled(page)
    feedback = page.locator("form.category[data-key=feedback]")
    feedback.locator("select[name=digest]").select_option("daily")
    feedback.locator("input[name=digest_time]").fill("18:00")
    feedback.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("フィードバック")
    survey = page.locator("form.category[data-key=survey]")
    survey.locator("input[name=chat_locked]").check()
    survey.locator("button").click()
    expect(page.locator("#flash")).to_contain_text("サーベイ")
    screenshot(page, "preferences-1-categories")
    open_system_menu(page, "通知のポリシー")
    page.wait_for_url("**/settings/notification-policy")
    settled(page)
    page.check("#company-hours-on")
    page.locator("#company-hours button").click()
    expect(page.locator("#flash")).to_contain_text("勤務時間を保存しました")

    me = member_page
    login(me, MEMBER)
    me.goto("/me/accounts")
    me.click("#me-preferences-link")
    me.wait_for_url("**/me/preferences")
    expect(me.locator("#preference-survey")).to_contain_text("会社で必須")
    expect(me.locator("#preference-feedback .preference-next")).to_contain_text("まとめ")
    me.locator("#preference-goals input[value=email]").check()
    me.click("#my-preferences-save")
    expect(me.locator("#flash")).to_contain_text("保存しました")
    expect(me.locator("#preference-goals input[value=email]")).to_be_checked()
    me.fill("#my-hours-start", "10:00")
    me.fill("#my-hours-end", "18:00")
    me.locator("#my-hours button").click()
    expect(me.locator("#my-window")).to_contain_text("10:00")
    screenshot(me, "preferences-2-member")

    headers = {"Authorization": f"Bearer {api_key(portal)}"}

    def post(title: str, category: str) -> str:
        answer = requests.post(
            f"{portal.url}/api/v1/notifications",
            json={"recipient_email": MEMBER, "title": title, "body": "本文", "category": category},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 202
        return str(answer.json()["deliveries"][0]["reason"])

    def subjects() -> list[str]:
        return [m["subject"] for m in sandbox.control("GET", f"/_control/mail?to={MEMBER}")]

    def wait_for(subject: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and subject not in subjects():
            time.sleep(0.3)

    goal, digest = "目標が更新されました", "フィードバックのまとめ（2件）"
    with time_machine.travel(datetime(2026, 12, 7, 22, 0, tzinfo=TOKYO), tick=True):  # Monday
        assert post(goal, "goals") == "held_quiet_hours"
    with time_machine.travel(datetime(2026, 12, 8, 9, 59, 55, tzinfo=TOKYO), tick=True):
        for title in ("山田さんからフィードバック", "佐藤さんからフィードバック"):
            assert post(title, "feedback") == "digest_pending"
        time.sleep(1.5)  # the worker loop runs: the goal update is not due before 10:00
        assert goal not in subjects()
    with time_machine.travel(datetime(2026, 12, 8, 10, 0, 1, tzinfo=TOKYO), tick=True):
        wait_for(goal)
    with time_machine.travel(datetime(2026, 12, 8, 18, 0, 1, tzinfo=TOKYO), tick=True):
        wait_for(digest)
    assert subjects().count(goal) == 1 and subjects().count(digest) == 1
    me.goto("/me/accounts")
    expect(me.locator("#me-deliveries")).to_contain_text(digest)
    expect(me.locator("#me-deliveries")).to_contain_text("まとめ通知に含めて送りました")
    screenshot(me, "preferences-3-digest-arrived")
