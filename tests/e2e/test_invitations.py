"""Inviting the unlinked, click by click (issue 15, item 2): the admin connects Slack and
invites the unlinked members; member37 opens the e-mailed link, confirms, signs in with
Slack, and is linked."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from sandbox.config import DEMO_SLACK_TEAM_ID
from sandbox.ids import short_id
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import browser_tab, connect_slack, login, open_integrations, screenshot

MEMBER = "member37@demo.example"


@pytest.fixture
def member_page(browser: Any, portal_url: str) -> Iterator[Any]:
    yield from browser_tab(browser, portal_url)


def invitation_link(sandbox: RunningSandbox) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for caught in sandbox.control("GET", f"/_control/mail?to={MEMBER}"):
            found = re.search(r"https?://\S+/me/invitations/[A-Za-z0-9_-]+", caught["text"])
            if found:
                return found.group(0)
        time.sleep(0.3)
    raise AssertionError("no invitation e-mail reached member37")


def test_admin_invites_the_unlinked_and_one_links_themselves(
    page: Any, member_page: Any, sandbox: RunningSandbox, portal_url: str
) -> None:
    sandbox.reset()
    sandbox.configure(portal_url=portal_url)
    open_integrations(page)
    connect_slack(page)

    page.click("#integrations-invite")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("#flash")).to_contain_text("招待しました")
    expect(page.locator("#integrations-invitations [data-invitation-state]").first).to_be_visible()
    screenshot(page, "invite-1-sent")

    me = member_page
    login(me, MEMBER)
    me.goto(invitation_link(sandbox))
    expect(me.locator("#invitation")).to_contain_text("Slack")
    screenshot(me, "invite-2-link-this-account")
    me.click("#invitation-accept")
    me.wait_for_url("**/slack/openid/connect/authorize**")
    me.check(f"input[name=user][value={short_id('U', DEMO_SLACK_TEAM_ID, MEMBER)}]")
    me.click("button[value=allow]")
    me.wait_for_url("**/me/accounts")
    expect(me.locator("#me-links")).to_contain_text("本人が連携")

    page.reload()
    expect(
        page.locator("#integrations-invitations [data-invitation-state=linked]")
    ).to_contain_text("1")
    screenshot(page, "invite-3-one-linked")
