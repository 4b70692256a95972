"""The seed's Chatwork procedure, click by click, in headless Chromium against the sandbox.

外部ツールの連携 → Chatwork → (wrong client ID: Chatwork's error page, back with the browser) →
register the OAuth client on the sandbox's registration page with the values copied from the
portal → client ID and secret → この内容で保存する → キャンセル (back with the form kept) → save
again → 許可する → link a member from a name suggestion and one through the dialog → send a test
message → see it in the inspector.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

import demodata
from sandbox.chatwork.seed import display_name
from sandbox.testing import RunningSandbox
from tests.e2e.conftest import open_integrations, screenshot


def wait_for_message(sandbox: RunningSandbox, email: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sandbox.control("GET", "/_control/messages?provider=chatwork"):
            if message.get("email") == email:
                return dict(message)
        time.sleep(0.2)
    raise AssertionError("the test message never reached the sandbox")


def register_client(page: Any) -> tuple[str, str]:
    """On the sandbox's OAuth client registration page, enter the values the portal shows."""
    name = page.locator("#chatwork-value-name").inner_text()
    client_type = page.locator("#chatwork-value-type").inner_text()
    redirect_uri = page.locator("#chatwork-value-redirect").inner_text()
    member_redirect_uri = page.locator("#chatwork-value-member-redirect").inner_text()
    scopes = page.locator("#chatwork-value-scopes code").all_inner_texts()
    page.click("button[data-copy='#chatwork-value-redirect']")
    with page.context.expect_page() as opened:
        page.click("#chatwork-registration-link")
    chatwork = opened.value
    chatwork.wait_for_load_state()
    chatwork.fill("input[name=name]", name)
    chatwork.check(f"input[name=client_type][value={client_type.lower()}]")
    chatwork.locator("input[name=redirect_uri]").nth(0).fill(redirect_uri)
    chatwork.locator("input[name=redirect_uri]").nth(1).fill(member_redirect_uri)
    for scope in scopes:
        chatwork.check(f"input[name=scope][value='{scope}']")
    screenshot(chatwork, "chatwork-2-register-client")
    chatwork.click("button[type=submit]")
    client_id = chatwork.locator("#client-id").inner_text()
    secret = chatwork.locator("#client-secret").inner_text()
    screenshot(chatwork, "chatwork-3-client-created")
    chatwork.close()
    return client_id, secret


def allow_as_notification_account(page: Any) -> None:
    """On Chatwork's consent page, choose the notification account and press 許可する."""
    page.wait_for_url("**/packages/oauth2/login.php**")
    page.select_option(
        "select[name=account_id]",
        label=page.locator(
            "select[name=account_id] option", has_text="Wistant通知用"
        ).first.inner_text(),
    )
    page.get_by_role("button", name="許可する").click()
    page.wait_for_url("**/settings/integrations/chatwork")


def test_chatwork_procedure(page: Any, sandbox: RunningSandbox) -> None:
    sandbox.reset()
    open_integrations(page)
    page.click("#provider-chatwork .provider-link")
    page.wait_for_url("**/settings/integrations/chatwork")
    expect(page.locator("#chatwork-step-prepare")).to_be_visible()
    screenshot(page, "chatwork-1-steps")

    # A wrong client ID: Chatwork shows its error page; the admin comes back with the browser.
    page.fill("#chatwork-client-id", "wrong-client-id-000")
    page.fill("#chatwork-client-secret", "whatever-secret")
    page.click("#chatwork-save")
    page.wait_for_url("**/packages/oauth2/login.php**")
    expect(page.locator("body")).to_contain_text("11000")
    screenshot(page, "chatwork-wrong-client-id")
    page.go_back()
    page.reload()
    expect(page.locator("#chatwork-returned")).to_be_visible()
    expect(page.locator("#chatwork-client-id")).to_have_value("wrong-client-id-000")
    expect(page.locator("#chatwork-secret-state")).to_be_visible()
    expect(page.locator("#chatwork-client-secret")).to_have_value("")
    screenshot(page, "chatwork-wrong-client-id-back")

    # Step 2: register the client with the portal's values; step 3: enter ID and secret.
    client_id, secret = register_client(page)
    page.fill("#chatwork-client-id", client_id)
    page.fill("#chatwork-client-secret", secret)
    page.click("#chatwork-save")
    page.wait_for_url("**/packages/oauth2/login.php**")
    screenshot(page, "chatwork-4-consent")

    # キャンセル: back on step 3 with a message and the form kept (the secret only as "set").
    page.click("button[value=cancel]")
    page.wait_for_url("**/settings/integrations/chatwork")
    expect(page.locator("#flash")).to_contain_text("Chatwork")
    expect(page.locator("#chatwork-client-id")).to_have_value(client_id)
    expect(page.locator("#chatwork-secret-state")).to_be_visible()
    assert secret not in page.content()
    screenshot(page, "chatwork-cancelled")

    # この内容で保存する again (the saved secret is kept) → 許可する as the notification account.
    page.click("#chatwork-save")
    allow_as_notification_account(page)
    expect(page.locator("#chatwork-account-name")).to_contain_text("Wistant通知用")
    expect(page.locator("#chatwork-personal-reminder")).to_have_count(0)
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
    screenshot(page, "chatwork-5-connected")

    # Link a member from a name suggestion (候補), one click.
    first = demodata.person(1)  # "佐藤 翔太" in Chatwork too
    suggestion = page.locator("#chatwork-suggestions tr", has_text=first.name).first
    expect(suggestion.locator(".badge")).to_be_visible()  # 候補
    suggestion.locator("button.confirm-suggestion").click()
    row = page.locator("#integrations-members tr", has_text=first.email)
    expect(row).to_have_attribute("data-linked", "true")
    screenshot(page, "chatwork-6-linked-from-suggestion")

    # member03 wrote their name in romaji: link through the dialog.
    third = demodata.person(3)
    row = page.locator("#integrations-members tr", has_text=third.email)
    row.locator("button.choose-account").click()
    dialog = page.locator("dialog#integrations-choose-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Chatworkアカウントを選択してください")
    page.fill("#integrations-account-search", third.family_roman)
    target = page.locator("#integrations-account-choices li", has_text=display_name(third))
    expect(target).to_have_count(1)
    screenshot(page, "chatwork-7-choose-account")
    target.locator("button.select-account").click()
    expect(dialog).to_have_count(0)
    row = page.locator("#integrations-members tr", has_text=third.email)
    expect(row).to_have_attribute("data-linked", "true")

    # Send a test message and see it in the inspector.
    row.locator("button.send-test").click()
    expect(page.locator("#flash")).to_contain_text("Chatwork")
    expect(page.locator("#flash")).to_contain_text(display_name(third))
    message = wait_for_message(sandbox, third.email)
    assert message["body"].startswith("[info][title]")
    inspector = page.context.new_page()
    inspector.goto(sandbox.http_url + "/?tab=chatwork")
    expect(inspector.locator("body")).to_contain_text(display_name(third))
    screenshot(inspector, "chatwork-8-inspector")
    inspector.close()


def test_chatwork_wrong_client_id_corrected_after_back(page: Any, sandbox: RunningSandbox) -> None:
    """The seed: "クライアントIDが間違っている場合は、Chatworkのエラー画面が表示されます。その場合は
    ブラウザの戻るボタンでWistantの画面に戻り、正しいクライアントIDを入力してください" — the correct
    ID only, the secret typed before kept, この内容で保存する, 許可する: connected."""
    open_integrations(page)
    page.click("#provider-chatwork .provider-link")
    page.wait_for_url("**/settings/integrations/chatwork")
    client_id, secret = register_client(page)
    client_field = page.get_by_label("クライアントID", exact=True)
    secret_field = page.get_by_label("クライアントシークレット", exact=True)
    save = page.get_by_role("button", name="この内容で保存する")
    client_field.fill(client_id[:-1] + ("y" if client_id.endswith("x") else "x"))  # a typo
    secret_field.fill(secret)
    save.click()
    page.wait_for_url("**/packages/oauth2/login.php**")
    expect(page.locator("body")).to_contain_text("不正なクライアントIDです")
    page.go_back()
    page.wait_for_url("**/settings/integrations/chatwork")
    expect(page.locator("#chatwork-secret-state")).to_contain_text("空欄のまま")
    expect(secret_field).to_have_value("")
    assert secret not in page.content()
    screenshot(page, "chatwork-wrong-client-id-correct-it")
    client_field.fill(client_id)
    save.click()
    allow_as_notification_account(page)
    expect(page.locator("#flash")).to_contain_text("Chatwork")
    expect(page.locator("#chatwork-account-name")).to_contain_text("Wistant通知用")
    expect(page.locator("#chatwork-client-id")).to_have_value(client_id)
    screenshot(page, "chatwork-wrong-client-id-corrected")
