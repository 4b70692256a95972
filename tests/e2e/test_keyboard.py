"""The seed's Slack procedure without a mouse (issue 19): only page.keyboard, from signing in to
the test message. Every stop of the focus on a portal page shows a focus ring; the account
dialog takes the focus, keeps it inside, closes on Escape and gives it back to its button.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from sandbox.testing import RunningSandbox
from tests.e2e.conftest import screenshot, settled

# What the focused element shows: an outline or a box shadow (the portal's :focus-visible ring).
_FOCUS_RING = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) { return "nothing has the focus"; }
  const style = getComputedStyle(element);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  if (outline || style.boxShadow !== "none") { return ""; }
  return "no focus ring on " + element.outerHTML.slice(0, 120);
}"""
_FOCUSED = (
    "(selector) => document.activeElement !== null && document.activeElement.matches(selector)"
)


def focused(page: Any, selector: str) -> bool:
    return bool(page.evaluate(_FOCUSED, selector))


def tab_to(page: Any, selector: str, *, ours: bool = True, limit: int = 60) -> None:
    """Press Tab until ``selector`` has the focus; on the portal's pages (``ours``) every
    element the focus passes shows its focus ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if ours:
            problem = page.evaluate(_FOCUS_RING)
            assert problem == "", problem
        if focused(page, selector):
            return
    raise AssertionError(f"{selector} not reached with {limit} presses of Tab")


def test_slack_procedure_by_keyboard(page: Any, sandbox: RunningSandbox) -> None:
    sandbox.reset()
    page.goto("/login")
    assert focused(page, "input[name=email]")  # autofocus
    page.keyboard.type("admin@demo.example")
    page.keyboard.press("Tab")
    page.keyboard.type("demo-pass-1234")
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/integrations")
    settled(page)

    # 「システム」→「外部ツールの連携」→「Slack」
    tab_to(page, "#system-menu > summary")
    page.keyboard.press("Enter")
    expect(page.locator("#system-menu")).to_have_attribute("open", "")
    tab_to(page, "#system-menu a[href$='/settings/integrations']")
    page.keyboard.press("Enter")
    settled(page)
    expect(page.locator("h1")).to_have_text("外部ツールの連携")
    tab_to(page, "#provider-slack h2 a")
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/integrations/slack")
    settled(page)

    # "Add to Slack", then Slack's (sandbox) page: a channel, 許可する.
    tab_to(page, "#setup-start")
    page.keyboard.press("Enter")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    tab_to(page, "select[name=channel]", ours=False)
    page.keyboard.type("#general")  # a closed <select> picks the option typed
    expect(page.locator("select[name=channel] option:checked")).to_have_text("#general")
    tab_to(page, "button[value=allow]", ours=False)
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    expect(page.locator("#integrations-autolink-batch")).to_have_attribute("data-auto-linked", "36")

    # member37 uses another address in Slack: find the row, open the dialog.
    tab_to(page, "#integrations-member-search")
    page.keyboard.type("member37")
    rows = page.locator("#integrations-members tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-linked", "false")
    settled(page)
    opener = "#integrations-members button.choose-account"
    tab_to(page, opener)
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#integrations-choose-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Slackアカウントを選択してください")

    # It has the focus, on its labelled search field, and keeps it: Tab and Shift+Tab go round.
    search = page.locator("#integrations-account-search")
    expect(search).to_be_focused()
    label = page.locator("label[for=integrations-account-search]").inner_text()
    assert label.strip()
    expect(search).to_have_accessible_name(label)
    for _ in range(dialog.locator("button, a[href], input:not([type=hidden])").count() + 2):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.closest('dialog') !== null")
        assert page.evaluate(_FOCUS_RING) == ""
    search.focus()
    page.keyboard.press("Shift+Tab")
    expect(dialog.locator("[data-close-dialog]")).to_be_focused()
    screenshot(page, "keyboard-1-dialog")

    # Escape closes it and the focus is back on the button that opened it.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator(opener)).to_be_focused()

    # Again, and this time choose an account, by keyboard.
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(search).to_be_focused()
    page.keyboard.type("demo-corp")
    choices = page.locator("#integrations-account-choices li[data-account]")
    expect(choices).to_have_count(3)
    settled(page)
    chosen = choices.first.locator("strong").inner_text()
    tab_to(page, "#integrations-account-choices li[data-account] button.select-account")
    expect(choices.first.locator("button.select-account")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    row = page.locator("#integrations-members tr", has_text="member37@demo.example")
    expect(row).to_have_attribute("data-linked", "true")
    expect(row.locator(".linked-account")).to_have_text(chosen)
    # Said in the polite live region, and the focus stays in the row that changed.
    flash = page.locator("#flash")
    expect(flash).to_have_attribute("aria-live", "polite")
    expect(flash).to_contain_text(chosen)
    row_id = row.get_attribute("id")
    page.wait_for_function(
        "(id) => document.activeElement.closest('tr') !== null"
        " && document.activeElement.closest('tr').id === id",
        arg=row_id,
    )
    screenshot(page, "keyboard-2-linked")

    # The test message, by keyboard too (test_slack_procedure.py follows it to Slack's side).
    tab_to(page, f"#{row_id} button.send-test")
    page.keyboard.press("Enter")
    expect(flash).to_contain_text("Slack")
    expect(flash).to_contain_text(chosen)
