"""Teams installed for everyone, click by click (issue 15, item 3): the admin connects Teams,
presses 「…人にインストールする」 and watches the progress; a member who never added the bot
then gets a test message in Teams."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from sandbox.config import DEMO_TENANT_ID
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot, settled

MEMBER = "member05@demo.example"


def test_admin_installs_the_app_for_every_linked_member(
    page: Any, sandbox: RunningSandbox, portal_url: str
) -> None:
    sandbox.reset()
    sandbox.configure(portal_url=portal_url)
    policy = {"tenant_id": DEMO_TENANT_ID, "block": ["member40@demo.example"]}
    sandbox.control("POST", "/_control/teams/app", policy)
    open_integrations(page)
    page.click("#provider-teams .provider-link")
    page.wait_for_url("**/settings/integrations/teams")
    page.click("#setup-start")
    page.wait_for_url("**/adminconsent**")
    page.select_option("select[name=tenant_choice]", value=DEMO_TENANT_ID)
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    expect(page.locator("#teams-bot-installs[data-installed='0']")).to_be_visible()
    region = page.locator("#teams-app-install")
    pending = region.locator("#teams-install-pending")
    expect(pending).not_to_have_attribute("data-pending", "0")
    screenshot(page, "teams-install-1-before")

    page.click("#teams-install-start")
    expect(region.locator("[data-install-state=done]")).to_be_visible(timeout=60_000)
    expect(region).to_contain_text("ポリシー")  # member40 is blocked by an app permission policy
    expect(region.locator("#teams-install-pending")).to_have_attribute("data-pending", "1")
    screenshot(page, "teams-install-2-done")

    # member05 never added the bot: the test message arrives in Teams all the same.
    page.fill("#integrations-member-search", MEMBER)
    row = page.locator("#integrations-members tr", has_text=MEMBER)
    expect(page.locator("#integrations-members tbody tr")).to_have_count(1)
    settled(page)
    row.locator("button.send-test").click()
    expect(page.locator("#flash")).to_contain_text("Microsoft Teams")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sent = sandbox.control("GET", f"/_control/messages?provider=microsoft&user={MEMBER}")
        if any("Chat Connect" in m["text"] for m in sent):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the test message never reached Teams")
