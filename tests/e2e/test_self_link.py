"""A member links their own accounts, click by click (issue 15, item 1): the admin connects
Slack, Microsoft Teams and Chatwork with automatic e-mail linking off; member37 (whose Slack
address differs, and who is no Chatwork contact yet) then links all three from /me/accounts,
through each provider's own sign-in page in the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from sandbox.config import DEMO_SLACK_TEAM_ID, DEMO_TENANT_ID
from sandbox.ids import short_id
from sandbox.microsoft.models import user_guid
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import (
    browser_tab,
    connect_slack,
    login,
    open_integrations,
    screenshot,
    settled,
)
from tests.e2e.test_chatwork_test_message import connect_chatwork

MEMBER = "member37@demo.example"


@pytest.fixture
def member_page(browser: Any, portal_url: str) -> Iterator[Any]:
    """A second browser for the member, so the admin's session stays apart."""
    yield from browser_tab(browser, portal_url)


def connect_everything(page: Any, sandbox: RunningSandbox, portal_url: str) -> None:
    """The admin: previews only (no automatic e-mail links), then Slack, Teams, Chatwork."""
    open_integrations(page)
    page.goto("/settings/notification-policy")
    page.uncheck("#me-policy-auto-link")
    page.click("#me-policy button")
    page.wait_for_url("**/settings/notification-policy")
    page.goto("/settings/integrations")
    connect_slack(page)
    page.goto("/settings/integrations/teams")
    page.click("#setup-start")
    page.wait_for_url("**/adminconsent**")
    page.select_option("select[name=tenant_choice]", value=DEMO_TENANT_ID)
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    page.goto("/settings/integrations")
    connect_chatwork(page, sandbox, portal_url)


def test_member_links_slack_microsoft_and_chatwork_themselves(
    page: Any, member_page: Any, sandbox: RunningSandbox, portal_url: str
) -> None:
    sandbox.reset()
    sandbox.configure(portal_url=portal_url)
    connect_everything(page, sandbox, portal_url)

    me = member_page
    login(me, MEMBER)
    me.goto("/me/accounts")
    expect(me.locator("#me-connect")).to_contain_text("自分のアカウントを連携する")
    for key in ("slack", "teams", "chatwork"):
        expect(me.locator(f"[data-testid=connect-{key}]")).to_be_visible()
    screenshot(me, "self-link-1-buttons")

    # Slack: Sign in with Slack as member37's Slack user (another address than the portal's).
    me.click("[data-testid=connect-slack]")
    me.wait_for_url("**/slack/openid/connect/authorize**")
    me.check(f"input[name=user][value={short_id('U', DEMO_SLACK_TEAM_ID, MEMBER)}]")
    screenshot(me, "self-link-2-sign-in-with-slack")
    me.click("button[value=allow]")
    me.wait_for_url("**/me/accounts")
    expect(me.locator("#flash")).to_contain_text("Slackアカウント")
    expect(me.locator("#me-links")).to_contain_text("本人が連携")

    # Microsoft: the company's tenant sign-in page, as member37.
    me.click("[data-testid=connect-teams]")
    me.wait_for_url(f"**/{DEMO_TENANT_ID}/oauth2/v2.0/authorize**")
    me.check(f"input[name=user][value='{user_guid(DEMO_TENANT_ID, MEMBER)}']")
    screenshot(me, "self-link-3-microsoft-sign-in")
    me.click("button[value=allow]")
    me.wait_for_url("**/me/accounts")
    expect(me.locator("#me-links tbody tr")).to_have_count(2)

    # Chatwork: authorize as member37, who is no contact of Wistant通知用 yet.
    me.click("[data-testid=connect-chatwork]")
    me.wait_for_url("**/packages/oauth2/login.php**")
    me.fill("input[name=member_mail]", MEMBER)
    me.click("button[value=allow]")
    me.wait_for_url("**/me/accounts")
    pending = me.locator("#me-pending-chatwork")
    expect(pending).to_contain_text("Wistant通知用")
    screenshot(me, "self-link-4-chatwork-contact-needed")
    # In Chatwork (the sandbox's contact screen), member37 sends the contact request…
    chatwork = me.context.new_page()
    chatwork.goto(f"{sandbox.http_url}/chatwork/www/contacts.php")
    chatwork.fill("input[name=from_mail]", MEMBER)
    with chatwork.expect_navigation():  # the form posts, then comes back to the contacts
        chatwork.click("#send-contact-request button[type=submit]")
    chatwork.wait_for_load_state()
    expect(chatwork.locator("#send-contact-request")).to_be_visible()
    # Not closed: closing a tab Chromium is still loading can hang; the context closes it.
    # …and tells the portal, which accepts exactly that request and links the direct chat.
    me.click("[data-testid=resume-chatwork]")
    me.wait_for_url("**/me/accounts")
    settled(me)
    expect(me.locator("#me-links tbody tr")).to_have_count(3)
    expect(me.locator("#me-pending-chatwork")).to_have_count(0)
    expect(me.locator("#me-connect")).to_have_count(0)
    screenshot(me, "self-link-5-all-linked")

    # The admin sees the three links, made by the member.
    page.goto("/settings/integrations/chatwork/members?q=member37")
    row = page.locator("#integrations-members tr", has_text=MEMBER)
    expect(row).to_have_attribute("data-linked", "true")
