"""Webhooks in the browser (issue 17 "Done when"): the admin opens 「システム」→「Webhook」,
registers an endpoint pointing at the sandbox's receiver, copies the secret shown once, sends a
test event, and sees signed events arrive in the sandbox's receiver page — verified there with
the secret — then a real event (a test message delivered) arrives too."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from sandbox.testing import RunningSandbox
from tests.e2e.conftest import login, open_system_menu, screenshot, settled


def test_admin_registers_an_endpoint_and_sees_signed_events_arrive(
    page: Any, sandbox: RunningSandbox, browser: Any
) -> None:
    login(page, "admin@demo.example")
    open_system_menu(page, "Webhook")
    page.wait_for_url("**/settings/webhooks")
    settled(page)
    expect(page.get_by_role("heading", name="Webhook", exact=True)).to_be_visible()
    receiver = f"{sandbox.http_url}/hooks/demo"
    page.fill("#webhook-new-url", receiver)
    page.fill("#webhook-new-description", "人事システム")
    page.click("#webhook-add button[type=submit]")
    expect(page.locator("#webhook-secret")).to_be_visible()
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret)
    screenshot(page, "webhooks-secret-once")

    # The sandbox receiver learns the secret, as the host app would, to verify signatures.
    inspector = browser.new_page()
    inspector.goto(f"{sandbox.http_url}/inspector/webhooks")
    inspector.fill("input[name=secret]", secret)
    inspector.click("text=シークレットを設定")

    page.get_by_role("link", name=receiver).click()
    page.wait_for_url("**/settings/webhooks/*")
    settled(page)
    page.get_by_role("button", name="テストイベントを送る").click()
    expect(page.locator("#webhook-log")).to_contain_text("webhook.test", timeout=15_000)

    inspector.reload()
    row = inspector.locator("tr.webhook-received").filter(has_text="webhook.test")
    expect(row).to_contain_text("検証OK", timeout=15_000)

    # A real event: the admin sends a member a test message; its delivery is reported.
    page.goto("/settings/members")
    settled(page)
    page.locator("button", has_text="テストメッセージを送信する").first.click()
    for _ in range(30):
        inspector.reload()
        if inspector.locator("tr.webhook-received", has_text="notification.delivered").count():
            break
        inspector.wait_for_timeout(500)
    delivered = inspector.locator("tr.webhook-received").filter(has_text="notification.delivered")
    expect(delivered.first).to_contain_text("検証OK")
    screenshot(inspector, "webhooks-sandbox-receiver")
    page.goto(page.url)
    screenshot(page, "webhooks-attempt-log")
