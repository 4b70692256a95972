"""The seed's way to the settings: 「システム」→「外部ツールの連携」→「Slack」, and the
「歯車アイコン」 at the top right, which opens the same menu (by mouse and by keyboard)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import login, screenshot, settled

ENTRIES = [
    "外部ツールの連携",
    "APIキー",
    "Webhook",
    "通知のポリシー",
    "通知カテゴリ",
    "監査ログ",
    "配信ログ",
]


def test_admin_reaches_slack_through_system_and_the_gear(page: Any) -> None:
    login(page, "admin@demo.example")
    if page.locator("button[lang=ja]").count():  # another browser test left English selected
        page.click("button[lang=ja]")
        page.wait_for_load_state("networkidle")
    # Start away from 外部ツールの連携, where an admin lands after signing in.
    page.goto("/settings/members")
    system = page.locator("#system-menu")
    expect(system.get_by_role("link", name="外部ツールの連携")).to_be_hidden()

    page.get_by_text("システム", exact=True).click()
    expect(system.get_by_role("link")).to_have_text(ENTRIES)
    screenshot(page, "navigation-1-system-menu")
    system.get_by_role("link", name="外部ツールの連携").click()
    page.wait_for_url("**/settings/integrations")
    settled(page)
    expect(page.locator("h1")).to_have_text("外部ツールの連携")

    # 「「Slack」をクリックします」: the provider's name itself.
    page.locator("#provider-slack").get_by_role("link", name="Slack", exact=True).click()
    page.wait_for_url("**/settings/integrations/slack")
    settled(page)
    # 「次に表示される画面の「Add to Slack」」
    expect(page.locator("#setup-start")).to_have_text("Add to Slack")

    # The gear at the top right, by keyboard: Enter opens it, Escape closes it again.
    gear = page.locator("#gear-menu")
    summary = gear.locator("summary")
    label = summary.get_attribute("aria-label") or ""
    assert label
    expect(summary).to_have_accessible_name(label)
    summary.focus()
    page.keyboard.press("Enter")
    expect(gear.get_by_role("link")).to_have_text(ENTRIES)
    screenshot(page, "navigation-2-gear-menu")
    page.keyboard.press("Escape")
    expect(gear.get_by_role("link").first).to_be_hidden()
    expect(summary).to_be_focused()

    # By mouse: opening the gear closes the 「システム」 menu, and its entry goes to the same page.
    page.get_by_text("システム", exact=True).click()
    summary.click()
    expect(system.get_by_role("link").first).to_be_hidden()
    gear.get_by_role("link", name="外部ツールの連携").click()
    page.wait_for_url("**/settings/integrations")
    settled(page)
    expect(page.locator("h1")).to_have_text("外部ツールの連携")
