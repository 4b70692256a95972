"""「テストメッセージを送信」 on the Chatwork page tests Chatwork, in headless Chromium.

The admin connects Slack and links member01 there, connects Chatwork and links member01 there
too (Slack is the tool their notifications go to), then presses 「テストメッセージを送信」 on the
Chatwork page: the flash names Chatwork and the account, the worker delivers the message to
Chatwork, Slack gets none, and a member without a Chatwork account has no such button.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

import demodata
from sandbox.chatwork.seed import display_name
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot, settled

TEST_TITLE = "Chat Connect からのテストメッセージ"


def messages(sandbox: RunningSandbox, provider: str, email: str) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", f"/_control/messages?provider={provider}&user={email}"))


def wait_for_chatwork(sandbox: RunningSandbox, email: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in messages(sandbox, "chatwork", email):
            if TEST_TITLE in message["body"]:
                return str(message["body"])
        time.sleep(0.2)
    raise AssertionError("the test message never reached Chatwork")


def link_on_slack(page: Any, email: str) -> None:
    """Add to Slack (#general, 許可する); link ``email`` by hand unless the sync already did."""
    page.click("#provider-slack .provider-link")
    page.wait_for_url("**/settings/integrations/slack")
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    page.select_option("select[name=channel]", label="#general")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    settled(page)
    row = page.locator("#integrations-members tr", has_text=email)
    # With automatic linking by e-mail on, the sync has linked the member already.
    if row.get_attribute("data-linked") == "false":
        row.locator("button.choose-account").click()
        page.fill("#integrations-account-search", email)
        choices = page.locator("#integrations-account-choices li[data-account]")
        expect(choices).to_have_count(1)
        choices.first.locator("button.select-account").click()
        expect(page.locator("dialog#integrations-choose-dialog")).to_have_count(0)
    expect(row).to_have_attribute("data-linked", "true")


def connect_chatwork(page: Any, sandbox: RunningSandbox, portal_url: str) -> None:
    """Chatwork with a client registered on the sandbox, allowed as Wistant通知用."""
    client = sandbox.control(
        "POST",
        "/_control/chatwork/clients",
        {
            "redirect_uris": [
                f"{portal_url}/chatwork/oauth/callback",
                f"{portal_url}/me/accounts/chatwork/callback",
            ]
        },
    )
    page.click("#provider-chatwork .provider-link")
    page.wait_for_url("**/settings/integrations/chatwork")
    page.fill("#chatwork-client-id", client["client_id"])
    page.fill("#chatwork-client-secret", client["client_secret"])
    page.click("#chatwork-save")
    page.wait_for_url("**/packages/oauth2/login.php**")
    page.select_option(
        "select[name=account_id]",
        label=page.locator(
            "select[name=account_id] option", has_text="Wistant通知用"
        ).first.inner_text(),
    )
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/chatwork")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()


def test_chatwork_page_test_message_goes_to_chatwork(
    page: Any, sandbox: RunningSandbox, portal_url: str
) -> None:
    member = demodata.person(1)
    open_integrations(page)
    link_on_slack(page, member.email)
    page.goto("/settings/integrations")
    connect_chatwork(page, sandbox, portal_url)

    # member01 is a name suggestion (候補) on Chatwork: one click links them there too.
    page.locator("#chatwork-suggestions tr", has_text=member.name).first.locator(
        "button.confirm-suggestion"
    ).click()
    row = page.locator("#integrations-members tr", has_text=member.email)
    expect(row).to_have_attribute("data-linked", "true")
    settled(page)
    unlinked = page.locator("#integrations-members tr[data-linked=false]")
    expect(unlinked.first).to_be_visible()
    expect(unlinked.locator("button.send-test")).to_have_count(0)

    row.locator("button.send-test").click()
    flash = page.locator("#flash p.flash-success", has_text="Chatwork")
    expect(flash).to_contain_text(display_name(member))
    screenshot(page, "test-message-chatwork-flash")
    assert wait_for_chatwork(sandbox, member.email).startswith("[info][title]")
    slack = messages(sandbox, "slack", member.email)
    assert slack, "member01's link notices go to Slack, the tool routing prefers"
    assert not any(TEST_TITLE in str(message) for message in slack)
