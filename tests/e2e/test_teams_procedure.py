"""The seed's Microsoft Teams procedure, click by click, in headless Chromium against the sandbox.

外部ツールの連携 → Microsoft Teams → 「Microsoft Teamsと連携する」 → (sandbox) the admin
consents for デモ株式会社 → back in the portal: tenant, who consented, the rights note →
a member adds "Wistant bot" in Teams (the sandbox inspector's action), the bot answers
「こんにちは◯◯さん」 and the portal's step 2 list shows the member (HTMX polling) → the admin
links that member and another through the 「アカウントを選択してください」 dialog → a test message
reaches the member in Teams (the inspector).
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from sandbox.config import DEMO_TENANT_ID
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot


def wait_for_message(sandbox: RunningSandbox, user: str, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sandbox.control("GET", f"/_control/messages?provider=microsoft&user={user}"):
            if needle in str(message.get("text", "")):
                return str(message["text"])
        time.sleep(0.2)
    raise AssertionError(f"no Teams message containing {needle!r} for {user}")


def link_through_dialog(page: Any, email: str) -> None:
    row = page.locator("#integrations-members tr", has_text=email)
    expect(row).to_have_attribute("data-linked", "false")
    row.locator("button.choose-account").click()
    dialog = page.locator("dialog#integrations-choose-dialog")
    expect(dialog).to_be_visible()
    page.fill("#integrations-account-search", email)
    choices = page.locator("#integrations-account-choices li[data-account]")
    expect(choices).to_have_count(1)
    screenshot(page, f"teams-5-choose-{email.split('@')[0]}")
    choices.first.locator("button.select-account").click()
    expect(dialog).to_have_count(0)
    row = page.locator("#integrations-members tr", has_text=email)
    expect(row).to_have_attribute("data-linked", "true")


def test_teams_procedure(page: Any, sandbox: RunningSandbox, portal_url: str) -> None:
    sandbox.reset()
    # Reset forgets where the portal is: Teams must post the install activities to it.
    sandbox.configure(portal_url=portal_url)
    open_integrations(page)
    # The seed's Teams procedure links members by hand (step 3): this company chose preview
    # only in 通知のポリシー, so connecting links nobody by e-mail.
    page.goto("/settings/notification-policy")
    page.uncheck("#me-policy-auto-link")
    page.click("#me-policy button")
    page.wait_for_url("**/settings/notification-policy")
    expect(page.locator("#me-policy-auto-link")).not_to_be_checked()
    page.goto("/settings/integrations")
    page.click("#provider-teams .provider-link")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("#teams-admin-rights")).to_be_visible()
    screenshot(page, "teams-1-connect")

    # 1. 「Microsoft Teamsと連携する」: a top-level navigation to the admin consent page.
    page.click("#setup-start")
    page.wait_for_url("**/adminconsent**")
    page.select_option("select[name=tenant_choice]", value=DEMO_TENANT_ID)
    screenshot(page, "teams-2-admin-consent")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("#teams-tenant-name")).to_have_text("デモ株式会社")
    expect(page.locator("#teams-tenant-id")).to_have_text(DEMO_TENANT_ID)
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    expect(page.locator("#teams-bot-installs[data-installed='0']")).to_be_visible()
    expect(page.locator("#integrations-autolink-setting")).to_have_attribute(
        "data-auto-link", "off"
    )
    screenshot(page, "teams-3-consented")

    # 2. A member adds "Wistant bot" in Teams (the sandbox inspector) and is greeted.
    inspector = page.context.new_page()
    inspector.goto(sandbox.http_url + "/?tab=microsoft")
    inspector.locator("tr", has_text="member01@demo.example").locator(
        "button", has_text="Teamsでボットを追加する"
    ).click()
    inspector.wait_for_load_state("networkidle")
    greeting = wait_for_message(sandbox, "member01@demo.example", "こんにちは")
    assert greeting.startswith("こんにちは") and greeting.endswith("さん")
    expect(inspector.locator("tr", has_text="member01@demo.example")).to_contain_text(greeting)
    screenshot(inspector, "teams-4-bot-greeting")

    # The portal's step 2 list shows the member without a reload (HTMX polling).
    expect(page.locator("#teams-bot-installs[data-installed='1']")).to_be_visible(timeout=10_000)
    member_name = greeting.removeprefix("こんにちは").removesuffix("さん")
    expect(page.locator("#teams-bot-installs")).to_contain_text(member_name)

    # 3. Link that member and another one through the account dialog.
    link_through_dialog(page, "member01@demo.example")
    link_through_dialog(page, "member02@demo.example")
    screenshot(page, "teams-6-linked")

    # 4. A test message reaches member01 in Teams.
    row = page.locator("#integrations-members tr", has_text="member01@demo.example")
    row.locator("button.send-test").click()
    text = wait_for_message(sandbox, "member01@demo.example", "Chat Connect")
    inspector.reload()
    expect(inspector.locator("tr", has_text="member01@demo.example")).to_contain_text(
        text.splitlines()[0]
    )
    screenshot(inspector, "teams-7-inspector")
    inspector.close()
