"""WCAG 2.2 AA in the browser (issue 19): axe-core finds nothing on any page or HTMX dialog and
region state that an admin, a member and a support user reach, in Japanese and in English; each
page's <html lang> follows the chosen language and every table has a caption and headers.

One walk per role, each over its pages once per language, reporting every failing state at the
end. Chat tools are connected through the sandbox, as the seed's procedures do, so the pages are
checked with real content (linked rows, the directory, suggestions, deliveries, audit entries).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from playwright.sync_api import expect

from portal.demo import DEFAULT_PASSWORD, SUPPORT_EMAIL
from sandbox.config import DEMO_TENANT_ID
from sandbox.testing import RunningSandbox
from tests.e2e.a11y import Audit
from tests.e2e.conftest import login, settled
from tests.e2e.test_chatwork_procedure import allow_as_notification_account, register_client

LOCALES = ("ja", "en")
PROVIDERS = ("slack", "teams", "chatwork")
# The names of the controls that show an icon or a short word only, in each language.
NAMES = {
    "ja": {"gear": "システム設定", "close": "閉じる", "copy": "コピー"},
    "en": {"gear": "System settings", "close": "Close", "copy": "Copy"},
}


def use_locale(page: Any, locale: str) -> None:
    """Choose the interface language with the header's switch (when it is not chosen yet)."""
    switch = page.locator(f"header button[lang={locale}]")
    if switch.count():
        with page.expect_navigation():
            switch.click()
        settled(page)
    expect(page.locator("html")).to_have_attribute("lang", locale)


def visit(page: Any, url: str) -> None:
    page.goto(url)  # returns at the load event, when htmx has sent the page's "load" requests
    settled(page)


def check_pages(audit: Audit, locale: str, urls: list[str]) -> None:
    for url in urls:
        visit(audit.page, url)
        audit.check(url, locale)


def connect_slack(page: Any) -> None:
    visit(page, "/settings/integrations/slack")
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    page.select_option("select[name=channel]", label="#general")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()


def connect_teams(page: Any) -> None:
    visit(page, "/settings/integrations/teams")
    page.click("#setup-start")
    page.wait_for_url("**/adminconsent**")
    page.select_option("select[name=tenant_choice]", value=DEMO_TENANT_ID)
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/teams")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()


def connect_chatwork(page: Any) -> None:
    visit(page, "/settings/integrations/chatwork")
    client_id, secret = register_client(page)
    page.fill("#chatwork-client-id", client_id)
    page.fill("#chatwork-client-secret", secret)
    page.click("#chatwork-save")
    allow_as_notification_account(page)
    expect(page.locator("[data-sync-state=done]")).to_be_visible()


def sign_out(page: Any) -> None:
    page.locator("header form[action$='/logout'] button").click()
    page.wait_for_url("**/login")


def test_signed_out_pages_pass_axe(axe_page: Any) -> None:
    page = axe_page
    audit = Audit(page)
    for locale in LOCALES:
        visit(page, "/login")
        use_locale(page, locale)
        audit.check("/login", locale)
        page.fill("input[name=email]", "admin@demo.example")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        expect(page.locator(".form-error")).to_be_visible()
        audit.check("/login (wrong password)", locale)
        visit(page, "/no-such-page")
        audit.check("404 page", locale)
    audit.assert_clean(at_least=6)


def admin_pages_before_connecting(audit: Audit, locale: str) -> None:
    page = audit.page
    check_pages(
        audit,
        locale,
        [
            "/settings/integrations",
            *(f"/settings/integrations/{key}" for key in PROVIDERS),
            *(f"/settings/integrations/{key}/members" for key in PROVIDERS),
        ],
    )
    expect(page.locator("#gear-menu > summary")).to_have_accessible_name(NAMES[locale]["gear"])
    # Chatwork's copy buttons keep their name after a copy; the live region says it.
    visit(page, "/settings/integrations/chatwork")
    copy = page.locator("button[data-copy='#chatwork-value-redirect']")
    expect(copy).to_have_accessible_name(NAMES[locale]["copy"])
    copy.click()
    expect(copy).to_have_attribute("data-copied", "true")
    expect(copy).to_have_accessible_name(NAMES[locale]["copy"])
    expect(page.locator("#toast")).not_to_be_empty()
    audit.check("Chatwork setup, a value just copied", locale)
    # キャンセル on Slack's page: the portal says the connection was not made.
    visit(page, "/settings/integrations/slack")
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    page.click("button[value=cancel]")
    page.wait_for_url(re.compile(r".*/slack/oauth/callback.*|.*/settings/integrations/slack$"))
    settled(page)
    audit.check("Slack set-up cancelled", locale)


def admin_pages_after_connecting(audit: Audit, locale: str) -> None:
    page = audit.page
    check_pages(
        audit,
        locale,
        [
            "/settings/integrations",
            "/settings/members",
            "/audit",
            "/deliveries",
            "/settings/api-keys",
            "/settings/notification-policy",
            "/me/security",
            "/me/accounts",
            "/settings/integrations/no-such-tool",
        ],
    )
    for key in PROVIDERS:
        visit(page, f"/settings/integrations/{key}")
        expect(page.locator("[data-sync-state=done]")).to_be_visible()
        if key == "teams":  # step 2, loaded into the page
            expect(page.locator("#teams-bot-installs[data-installed]")).to_be_visible()
        if key == "chatwork":
            expect(page.locator("#chatwork-suggestions h2")).to_be_visible()
        audit.check(f"/settings/integrations/{key} (connected)", locale)
        check_pages(
            audit,
            locale,
            [
                f"/settings/integrations/{key}/members",
                f"/settings/integrations/{key}/members/auto-link",
                f"/settings/integrations/{key}/links",
            ],
        )

    # The account-selection dialog, open, then with a search answered.
    visit(page, "/settings/integrations/slack/members?state=unlinked")
    page.locator("#integrations-members button.choose-account").first.click()
    dialog = page.locator("dialog#integrations-choose-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-close-dialog]")).to_have_accessible_name(NAMES[locale]["close"])
    audit.check("account-selection dialog", locale)
    page.fill("#integrations-account-search", "demo-corp")
    expect(page.locator("#integrations-account-choices li[data-account]")).to_have_count(3)
    settled(page)
    audit.check("account-selection dialog, searched", locale)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # Chatwork's 「候補をすべて確定」 dialog.
    visit(page, "/settings/integrations/chatwork")
    page.click("#chatwork-confirm-all")
    expect(page.locator("dialog#chatwork-confirm-dialog")).to_be_visible()
    audit.check("Chatwork confirm-all dialog", locale)
    page.keyboard.press("Escape")

    # A new API key, shown once.
    visit(page, "/settings/api-keys")
    page.fill("input[name=name]", f"a11y-{locale}")
    page.click("form.inline-form button[type=submit]")
    expect(page.locator("#new-api-key")).to_be_visible()
    audit.check("/settings/api-keys (new key)", locale)

    # CSV import: a file with an error line, then one with a change to preview.
    for name, body in [
        ("errors.csv", "email,account_id\nnobody@demo.example,U404\n"),
        ("change.csv", "email,account_id\nmember01@demo.example,\n"),
    ]:
        visit(page, "/settings/integrations/slack/links")
        page.set_input_files(
            "input[name=file]",
            files=[{"name": name, "mimeType": "text/csv", "buffer": body.encode()}],
        )
        page.click("#transfer-import button")
        expect(page.locator("#transfer-preview")).to_be_visible()
        audit.check(f"CSV import preview ({name})", locale)


def admin_walk(audit: Audit) -> None:
    page = audit.page
    login(page, "admin@demo.example")
    for locale in LOCALES:
        use_locale(page, locale)
        admin_pages_before_connecting(audit, locale)
    use_locale(page, "ja")
    connect_slack(page)  # members with the same e-mail address are linked and asked to confirm
    connect_teams(page)
    connect_chatwork(page)
    # A member linked by hand: the row changes and the flash region says so.
    visit(page, "/settings/integrations/slack/members?q=member37")
    page.locator("#integrations-members button.choose-account").click()
    page.locator("#integrations-account-choices button.select-account").first.click()
    expect(page.locator("#flash .flash-success")).to_be_visible()
    audit.check("a member just linked by hand", "ja")
    for locale in LOCALES:
        use_locale(page, locale)
        admin_pages_after_connecting(audit, locale)
    sign_out(page)


def confirmation_url(sandbox: RunningSandbox, email: str, timeout: float = 60) -> str:
    """The "is this your account?" link of the notice Slack delivered to ``email``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sandbox.control("GET", "/_control/messages?provider=slack"):
            found = re.search(r"https?://\S+/me/links/confirm/[^\s>|]+", str(message.get("text")))
            if message.get("email") == email and found:
                return found.group(0)
        time.sleep(0.3)
    raise AssertionError(f"no confirmation link reached {email}")


def member_walk(audit: Audit, sandbox: RunningSandbox) -> None:
    page = audit.page
    login(page, "member01@demo.example")
    confirm = confirmation_url(sandbox, "member01@demo.example")
    for locale in LOCALES:
        use_locale(page, locale)
        # /settings/members: the 403 page a member meets.
        check_pages(
            audit,
            locale,
            ["/me/accounts", "/me/security", "/settings/members", "/me/invitations/not-a-token"],
        )
        visit(page, confirm)
        expect(page.locator("#me-confirm")).to_be_visible()
        audit.check("/me/links/confirm/<token>", locale)
    visit(page, confirm[: -len("x")] + ("y" if confirm.endswith("x") else "x"))  # tampered with
    audit.check("/me/links/confirm/<bad token>", "en")
    visit(page, confirm)
    page.locator("#me-confirm button").first.click()  # Yes, this is me
    expect(page.locator("#flash .flash-success")).to_be_visible()
    audit.check("/me/accounts (just confirmed)", "en")
    sign_out(page)


def support_walk(audit: Audit) -> None:
    page = audit.page
    login(page, SUPPORT_EMAIL)
    org = "org=demo"
    for locale in LOCALES:
        use_locale(page, locale)
        check_pages(
            audit,
            locale,
            [
                "/support/organizations",
                "/support",
                "/support?q=member01",
                f"/support/health?{org}",
                f"/settings/integrations?{org}",
                *(f"/settings/integrations/{key}?{org}" for key in PROVIDERS),
                *(f"/settings/integrations/{key}/members?{org}" for key in PROVIDERS),
                f"/settings/integrations/slack/members/auto-link?{org}",
                f"/settings/members?{org}",
                "/audit",
                f"/audit?{org}",
                f"/deliveries?{org}",
                "/me/security",
                "/settings/api-keys",  # the 403 page
            ],
        )
        visit(page, "/support?q=member01")
        page.locator("#support-results a").first.click()
        page.wait_for_url("**/support/members/**")
        settled(page)
        audit.check("/support/members/<id>", locale)
        page.locator("#support-deliveries a.why-link").first.click()  # member01's link notice
        expect(page.locator("#support-why")).to_be_visible()
        audit.check("/support/members/<id>?notification=… (why)", locale)
    sign_out(page)


def two_step_walk(audit: Audit) -> None:
    """The set-up of two-step verification, then the code page at the next sign-in."""
    page = audit.page
    login(page, "admin@demo.example")
    use_locale(page, "ja")
    visit(page, "/me/security")
    page.click("#security-off button")
    audit.check("/me/security (set-up)", "ja")
    totp = pyotp.TOTP(page.locator("#security-secret").inner_text().replace(" ", ""))
    page.fill("input[name=code]", totp.now())
    page.click("#security-setup button.primary")
    expect(page.locator("#security-on")).to_be_visible()
    audit.check("/me/security (on)", "ja")
    sign_out(page)
    page.fill("input[name=email]", "admin@demo.example")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code")
    for locale in LOCALES:
        use_locale(page, locale)
        audit.check("/login/code", locale)


def test_every_role_s_pages_and_dialogs_pass_axe(axe_page: Any, sandbox: RunningSandbox) -> None:
    """Admin, member and support in one world (the admin connects all three tools first), so
    the chat tools are connected once: Slack's link notices take a second each to go out."""
    audit = Audit(axe_page)
    admin_walk(audit)
    member_walk(audit, sandbox)
    support_walk(audit)
    two_step_walk(audit)
    audit.assert_clean(at_least=129)
