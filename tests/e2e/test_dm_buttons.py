"""Interactive DMs, click by click (issue 17 item 5): the host app asks a member to confirm a
notification, the member presses 「確認しました」 in Slack or in a Teams card (the sandbox
inspector), the DM changes and the admin's 配信ログ says who confirmed it and when; a member
linked automatically by e-mail answers 「はい、私です」 on their first DM and /me/accounts
shows the link confirmed.

Slack paces DMs at one a second per workspace, so the acknowledgement tests link one member by
hand (the company chose preview only): 36 automatic link notices queued before the
notification would hold it back for half a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts.models import Organization, User
from portal.extensions import db
from portal.notifications import api_keys
from sandbox.config import DEMO_TENANT_ID
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import (
    Portal,
    browser_tab,
    connect_slack,
    login,
    open_integrations,
    open_system_menu,
    screenshot,
    settled,
)
from tests.e2e.test_teams_procedure import link_through_dialog

MEMBER = "member01@demo.example"


@pytest.fixture
def member_page(browser: Any, portal_url: str) -> Iterator[Any]:
    """A second browser for the member, so the admin's session stays apart."""
    yield from browser_tab(browser, portal_url)


def name_of(portal: Portal, email: str) -> str:
    with portal.app.app_context():
        name = db.session.scalar(select(User.name).filter_by(email=email))
        db.session.remove()
    assert name
    return str(name)


def send_notification(portal: Portal, title: str) -> None:
    """The host app: one notification for member01 that asks for 「確認しました」."""
    with portal.app.app_context():
        organization = db.session.scalar(select(Organization).filter_by(slug="demo"))
        assert organization is not None
        _row, key = api_keys.create(organization, "e2e", actor=None)
        db.session.remove()
    answer = requests.post(
        f"{portal.url}/api/v1/notifications",
        json={
            "recipient_email": MEMBER,
            "title": title,
            "body": "今期の目標を確認してください。",
            "ack_requested": True,
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["ack_requested"] is True


def reload_until_visible(page: Any, locator: Any, timeout: float = 20) -> None:
    """The inspector is a plain page: reload it until the worker's DM shows up."""
    deadline = time.monotonic() + timeout
    while not locator.count():
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
        page.reload()
    expect(locator.first).to_be_visible(timeout=1_000)


def preview_only(page: Any) -> None:
    """The admin turns automatic e-mail linking off in 通知のポリシー."""
    page.goto("/settings/notification-policy")
    page.uncheck("#me-policy-auto-link")
    page.click("#me-policy button")
    page.wait_for_url("**/settings/notification-policy")
    expect(page.locator("#me-policy-auto-link")).not_to_be_checked()


def expect_acknowledged_in_delivery_log(page: Any, title: str, name: str, shot: str) -> None:
    """The admin's 配信ログ: under the title, 「<name> さんが <time> に確認しました」."""
    page.goto("/settings/integrations")
    settled(page)
    open_system_menu(page, "配信ログ")
    page.wait_for_url("**/deliveries**")
    settled(page)
    row = page.locator("#delivery-rows tr", has_text=title).first
    note = row.locator(".acknowledged")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"{name} さんが")
    expect(note).to_contain_text("に確認しました")
    screenshot(page, shot)


def test_slack_acknowledge_button(page: Any, sandbox: RunningSandbox, portal: Portal) -> None:
    title = "目標の確認(Slack)"
    name = name_of(portal, MEMBER)
    open_integrations(page)
    preview_only(page)
    page.goto("/settings/integrations")
    settled(page)
    connect_slack(page)
    page.fill("#integrations-member-search", MEMBER)
    expect(page.locator("#integrations-members tbody tr")).to_have_count(1)
    settled(page)
    link_through_dialog(page, MEMBER)

    send_notification(portal, title)

    inspector = page.context.new_page()
    inspector.goto(f"{sandbox.http_url}/?tab=slack")
    bubble = inspector.locator("div.bubble", has_text=title)
    button = bubble.locator("button[data-action=acknowledge]")
    reload_until_visible(inspector, button)
    expect(button).to_have_text("確認しました")
    screenshot(inspector, "dm-buttons-1-slack-ack-button")
    button.click()
    inspector.wait_for_load_state()
    # The portal replaced the DM through response_url: no button, who confirmed and when.
    expect(bubble.locator("button")).to_have_count(0)
    expect(bubble).to_contain_text(f"{name} さんが")
    expect(bubble).to_contain_text("に確認しました")
    screenshot(inspector, "dm-buttons-2-slack-acknowledged")

    expect_acknowledged_in_delivery_log(page, title, name, "dm-buttons-3-slack-delivery-log")


def test_teams_acknowledge_card_action(page: Any, sandbox: RunningSandbox, portal: Portal) -> None:
    title = "目標の確認(Teams)"
    name = name_of(portal, MEMBER)
    sandbox.configure(portal_url=portal.url)
    open_integrations(page)
    preview_only(page)
    page.goto("/settings/integrations")
    settled(page)
    page.click("#provider-teams .provider-link")
    page.wait_for_url("**/settings/integrations/teams")
    page.click("#setup-start")
    page.wait_for_url("**/adminconsent**")
    page.select_option("select[name=tenant_choice]", value=DEMO_TENANT_ID)
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()

    # member01 adds the bot in Teams (the inspector); the admin links them.
    inspector = page.context.new_page()
    inspector.goto(f"{sandbox.http_url}/?tab=microsoft")
    member_row = inspector.locator("tr", has_text=MEMBER)
    member_row.locator("button", has_text="Teamsでボットを追加する").click()
    inspector.wait_for_load_state()
    expect(page.locator("#teams-bot-installs[data-installed='1']")).to_be_visible()
    link_through_dialog(page, MEMBER)

    send_notification(portal, title)

    bubble = member_row.locator("div.bubble", has_text=title)
    button = bubble.locator("button[data-action=acknowledge]")
    reload_until_visible(inspector, button)
    expect(button).to_have_text("確認しました")
    screenshot(inspector, "dm-buttons-4-teams-ack-action")
    button.click()
    inspector.wait_for_load_state()
    # The inspector shows the card the portal answered the invoke with.
    expect(bubble.locator("button")).to_have_count(0)
    expect(bubble).to_contain_text(f"{name} さんが")
    expect(bubble).to_contain_text("に確認しました")
    screenshot(inspector, "dm-buttons-5-teams-acknowledged")

    expect_acknowledged_in_delivery_log(page, title, name, "dm-buttons-6-teams-delivery-log")


def test_this_is_me_from_the_first_slack_dm(
    page: Any, member_page: Any, sandbox: RunningSandbox, portal: Portal
) -> None:
    # Connecting Slack links member01 (and 35 others) by their e-mail address, unconfirmed.
    open_integrations(page)
    connect_slack(page)
    row = page.locator("#integrations-members tr", has_text=MEMBER)
    expect(row).to_have_attribute("data-linked", "true")

    me = member_page
    login(me, MEMBER)
    me.goto("/me/accounts")
    link = me.locator("#me-links tbody tr", has_text="Slack")
    expect(link).to_contain_text("未確認")

    # The first DM over that link asks 「はい、私です」/「私ではありません」.
    inspector = page.context.new_page()
    inspector.goto(f"{sandbox.http_url}/?tab=slack")
    # Each bubble follows its recipient's heading: member01's bubble with the buttons.
    offered = inspector.locator(
        "xpath=//div[contains(@class, 'bubble')]"
        f"[preceding-sibling::h4[1][contains(., '{MEMBER}')]]"
        "[.//button[@data-action='confirm_link']]"
    )
    reload_until_visible(inspector, offered, timeout=30)
    bubble = inspector.locator(f"div.bubble[data-ts='{offered.first.get_attribute('data-ts')}']")
    button = bubble.locator("button[data-action=confirm_link]")
    expect(button).to_have_text("はい、私です")
    expect(bubble.locator("button[data-action=disown_link]")).to_have_text("私ではありません")
    screenshot(inspector, "dm-buttons-7-slack-this-is-me")
    button.click()
    inspector.wait_for_load_state()
    # The DM was replaced: nothing left to press, and a line thanks the member.
    expect(bubble.locator("button")).to_have_count(0)
    expect(bubble).to_contain_text("アカウントを確認しました")
    screenshot(inspector, "dm-buttons-8-slack-confirmed")

    me.reload()
    expect(link).to_contain_text("確認済み")
    expect(link).not_to_contain_text("未確認")
    screenshot(me, "dm-buttons-9-me-accounts-confirmed")
