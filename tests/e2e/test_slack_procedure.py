"""The seed's Slack procedure, click by click, in headless Chromium against the sandbox.

外部ツールの連携 → Slack → "Add to Slack" → (sandbox) choose a channel, 許可する → back in the
portal: members with the same e-mail address are linked already → link one member by hand
through the "Slackアカウントを選択してください" dialog → send a test message → see it in the
inspector.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot


def wait_for_message(
    sandbox: RunningSandbox, predicate: Any, timeout: float = 60
) -> dict[str, Any]:
    # The worker also sends the link notices of the auto-link, paced at Slack's 1 message/s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sandbox.control("GET", "/_control/messages?provider=slack"):
            if predicate(message):
                return dict(message)
        time.sleep(0.2)
    raise AssertionError("the test message never reached the sandbox")


def test_slack_procedure(page: Any, sandbox: RunningSandbox) -> None:
    sandbox.reset()
    open_integrations(page)
    page.click("#provider-slack .provider-link")
    page.wait_for_url("**/settings/integrations/slack")
    screenshot(page, "slack-1-add-to-slack")

    # 1. Add to Slack: a top-level navigation to the (sandbox) Slack consent page.
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    # 2. Choose one channel (no notification is ever posted there), then 許可する.
    page.select_option("select[name=channel]", label="#general")
    screenshot(page, "slack-2-consent-channel")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("#integrations-channel")).to_contain_text("#general")
    expect(page.locator("#integrations-workspace")).to_have_text("デモ株式会社")

    # 3a. The directory was read and, as the seed says, everyone with the same e-mail address
    # in Slack is linked already: admin, member01–34 and member36 (a guest); member35 left
    # Slack, member37–39 use another address there, member40 has not accepted the invitation.
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    expect(page.locator("#integrations-autolink-batch")).to_have_attribute("data-auto-linked", "36")
    expect(page.locator("#integrations-autolink [data-matches]")).to_have_attribute(
        "data-matches", "0"
    )
    screenshot(page, "slack-3-auto-linked")
    expect(page.locator("#integrations-members tr[data-linked=true]")).to_have_count(36)

    # 3b. member37 signs in to Slack with another address: link by hand through the dialog.
    row = page.locator("#integrations-members tr", has_text="member37@demo.example")
    expect(row).to_have_attribute("data-linked", "false")
    row.locator("button.choose-account").click()
    dialog = page.locator("dialog#integrations-choose-dialog")
    expect(dialog).to_be_visible()
    page.fill("#integrations-account-search", "demo-corp")
    expect(page.locator("#integrations-account-choices li[data-account]")).to_have_count(3)
    screenshot(page, "slack-5-choose-account")
    target = page.locator("#integrations-account-choices li[data-account]").first
    chosen_name = target.locator("strong").inner_text()
    target.locator("button.select-account").click()
    expect(dialog).to_have_count(0)  # closed and removed
    row = page.locator("#integrations-members tr", has_text="member37@demo.example")
    expect(row).to_have_attribute("data-linked", "true")
    expect(row.locator(".linked-account")).to_have_text(chosen_name)
    screenshot(page, "slack-6-linked-by-hand")

    # 4. Send a test message through the delivery pipeline and see it in the inspector.
    row.locator("button.send-test").click()
    expect(page.locator("#flash")).to_contain_text("Slack")
    expect(page.locator("#flash")).to_contain_text(chosen_name)
    message = wait_for_message(
        sandbox, lambda m: str(m.get("email", "")).endswith("demo-corp.example")
    )
    inspector = page.context.new_page()
    inspector.goto(sandbox.http_url + "/")
    expect(inspector.locator("body")).to_contain_text(message["text"].splitlines()[0])
    screenshot(inspector, "slack-7-inspector")
    inspector.close()
