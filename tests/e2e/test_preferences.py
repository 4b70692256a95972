"""What arrives, where and when, click by click (issue 16): the admin sets feedback to a daily
digest at 18:00 and makes surveys required; a member sees that, sends goals by e-mail only;
the host app sends two feedback notifications at 10:00 and, with the clock moved to 18:00,
one digest listing both reaches the member."""

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


def test_categories_preferences_and_a_digest_at_six(
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
    screenshot(me, "preferences-2-member")

    key = api_key(portal)
    headers = {"Authorization": f"Bearer {key}"}
    with time_machine.travel(datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO), tick=True):
        for title in ("山田さんからフィードバック", "佐藤さんからフィードバック"):
            answer = requests.post(
                f"{portal.url}/api/v1/notifications",
                json={
                    "recipient_email": MEMBER,
                    "title": title,
                    "body": "本文",
                    "category": "feedback",
                },
                headers=headers,
                timeout=10,
            )
            assert answer.status_code == 202
            assert answer.json()["deliveries"][0]["reason"] == "digest_pending"
    with time_machine.travel(datetime(2026, 12, 7, 18, 0, 1, tzinfo=TOKYO), tick=True):
        deadline = time.monotonic() + 30
        subjects: list[str] = []
        while time.monotonic() < deadline and "フィードバックのまとめ（2件）" not in subjects:
            subjects = [m["subject"] for m in sandbox.control("GET", f"/_control/mail?to={MEMBER}")]
            time.sleep(0.3)
    assert subjects.count("フィードバックのまとめ（2件）") == 1
    me.goto("/me/accounts")
    expect(me.locator("#me-deliveries")).to_contain_text("フィードバックのまとめ（2件）")
    expect(me.locator("#me-deliveries")).to_contain_text("まとめ通知に含めて送りました")
    screenshot(me, "preferences-3-digest-arrived")
