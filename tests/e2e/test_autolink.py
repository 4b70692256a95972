"""Connecting Slack links everyone with the same e-mail address, and the admin can undo it.

The seed: 「メールアドレスが同じ場合は、自動的にアカウント同士の紐付けが完了します」. After
"Add to Slack" the provider page says how many members were linked automatically and how many
need the admin; 「この自動紐付けを取り消す」 unlinks exactly that batch.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot, settled


def test_connect_slack_links_automatically_then_undo(page: Any, sandbox: RunningSandbox) -> None:
    open_integrations(page)
    page.click("#provider-slack .provider-link")
    page.wait_for_url("**/settings/integrations/slack")
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    page.select_option("select[name=channel]", label="#general")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/slack")

    # admin, member01–34 and member36 share their address with Slack; member35 left Slack,
    # member37–39 use another address there, member40 is still invited: 5 need the admin.
    batch = page.locator("#integrations-autolink-batch")
    expect(batch).to_have_attribute("data-auto-linked", "36")
    expect(batch).to_have_attribute("data-needs-admin", "5")
    expect(batch).to_contain_text("36")
    expect(batch).to_contain_text("5")
    expect(page.locator("#integrations-members tr[data-linked=true]")).to_have_count(36)
    row = page.locator("#integrations-members tr", has_text="member01@demo.example")
    expect(row).to_have_attribute("data-linked", "true")
    screenshot(page, "autolink-1-linked-automatically")

    # 「この自動紐付けを取り消す」 asks first, then unlinks the batch; the list reloads itself.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#integrations-autolink-undo")
    expect(page.locator("#integrations-autolink-batch")).to_have_attribute("data-undone", "true")
    settled(page)
    expect(page.locator("#integrations-members tr[data-linked=true]")).to_have_count(0)
    expect(page.locator("#integrations-autolink-undo")).to_have_count(0)
    # What was undone can be linked again from the preview, by the admin's choice.
    expect(page.locator("#integrations-autolink [data-matches]")).to_have_attribute(
        "data-matches", "36"
    )
    screenshot(page, "autolink-2-undone")
