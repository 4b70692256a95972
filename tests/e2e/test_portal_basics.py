"""The demo admin signs in, opens 外部ツールの連携, searches members, switches to English."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import login, open_system_menu, screenshot


def test_admin_walks_the_portal_in_japanese_then_english(page: Any) -> None:
    login(page, "admin@demo.example")
    open_system_menu(page, "外部ツールの連携")
    page.wait_for_url("**/settings/integrations")
    assert page.locator("h1").inner_text() == "外部ツールの連携"
    assert page.locator(".provider-card").count() == 3
    assert page.locator("#provider-slack .badge").inner_text() == "未連携"
    screenshot(page, "integrations-ja")

    page.click("nav >> text=メンバー")
    page.wait_for_url("**/settings/members")
    page.fill("#member-search", "佐藤")
    # htmx swaps the table in place after typing (no full page load).
    expect(page.locator("#members-table .meta")).to_have_text("メンバー 2 人")
    assert "佐藤 翔太" in page.locator("#members-table").inner_text()
    screenshot(page, "members-search-ja")

    page.click("button[lang=en]")
    page.wait_for_load_state("networkidle")
    open_system_menu(page, "External tool integration")
    page.wait_for_url("**/settings/integrations")
    assert page.locator("h1").inner_text() == "External tool integration"
    assert page.locator("#provider-chatwork .badge").inner_text() == "Not connected"
    screenshot(page, "integrations-en")


def test_wrong_password_message(page: Any) -> None:
    login(page, "admin@demo.example", "wrong-password")
    assert (
        "メールアドレスまたはパスワードが正しくありません"
        in page.locator(".form-error").inner_text()
    )
