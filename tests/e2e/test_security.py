"""PT-45 in the browser: an admin turns on two-step verification, signs out, and signs in again
with the password and a code from the authenticator app (computed here with pyotp)."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from playwright.sync_api import expect

from portal.demo import DEFAULT_PASSWORD
from tests.e2e.conftest import login, screenshot, settled


def test_admin_sets_up_and_uses_two_step_verification(page: Any) -> None:
    login(page, "admin@demo.example")
    page.click("nav >> text=2 段階認証")
    page.wait_for_url("**/me/security")
    settled(page)
    page.click("#security-off button")
    secret = page.locator("#security-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    screenshot(page, "security-1-setup")
    page.fill("input[name=code]", "000000")
    page.click("#security-setup button.primary")
    expect(page.locator("#security-setup .form-error")).to_be_visible()  # a wrong code
    page.fill("input[name=code]", totp.now())
    page.click("#security-setup button.primary")
    expect(page.locator("#security-on")).to_be_visible()
    screenshot(page, "security-2-on")

    page.click("header button.linkish >> text=ログアウト")
    page.wait_for_url("**/login")
    page.fill("input[name=email]", "admin@demo.example")
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code")
    screenshot(page, "security-3-code")
    # The set-up spent the current code: use the app's next one (accepted within one step).
    page.fill("input[name=code]", totp.at(time.time() + 30))
    page.click("#login-code button")
    page.wait_for_url("**/settings/integrations")
    expect(page.locator("nav")).to_contain_text("外部ツールの連携")
