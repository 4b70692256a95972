"""Support console, a member's own page and the CSV import, in the browser (with screenshots).

The demo data has no chat tool connected, so a Slack integration with a few directory accounts
and one automatic link is written straight into the portal's database first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from portal import create_app
from portal.accounts.models import Organization, User
from portal.extensions import db
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)
from portal.notifications.services import create_notification
from tests.conftest import base_config
from tests.e2e.conftest import Portal, login, screenshot, settled


@pytest.fixture
def slack_demo(portal: Portal) -> None:
    """A connected Slack with member01 linked and one notification, in this test's database."""
    app = create_app(base_config(f"sqlite:///{portal.database}"))
    with app.app_context():
        demo = db.session.scalar(select(Organization).filter_by(slug="demo"))
        assert demo is not None
        if db.session.scalar(select(Integration).filter_by(organization_id=demo.id)) is None:
            integration = Integration(
                organization_id=demo.id,
                provider="slack",
                state=IntegrationState.CONNECTED,
                external_id="TE2EPEOPLE",
                display_name="デモ Slack",
                config={},
            )
            db.session.add(integration)
            db.session.flush()
            accounts = [
                ChatAccount(
                    organization_id=demo.id,
                    integration_id=integration.id,
                    external_id=f"UE2E{n:04d}",
                    name=f"slack-member{n:02d}",
                    email=f"member{n:02d}@demo.example",
                )
                for n in range(1, 4)
            ]
            db.session.add_all(accounts)
            db.session.flush()
            member = db.session.scalar(select(User).filter_by(email="member01@demo.example"))
            assert member is not None
            db.session.add(
                AccountLink(
                    organization_id=demo.id,
                    integration_id=integration.id,
                    user_id=member.id,
                    chat_account_id=accounts[0].id,
                    method=LinkMethod.EMAIL,
                )
            )
            create_notification(demo, member, title="請求書が届きました", body="…")
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


def test_support_finds_a_member_and_reads_their_story(page: Any, slack_demo: None) -> None:
    login(page, "support@chat-connect.example")
    page.goto("/support")
    page.fill("#support-q", "member01@")
    page.press("#support-q", "Enter")
    settled(page)
    page.click("#support-results a")
    page.wait_for_selector("#support-links")
    assert "slack-member01" in page.locator("#support-links").inner_text()
    assert page.locator(".banner.support").count() == 1  # read-only and audited
    page.click("#support-deliveries a.why-link")
    page.wait_for_selector("#support-why li")
    assert page.locator("#support-why li").count() >= 1
    screenshot(page, "people-support-member")


def test_member_sees_accounts_and_chooses_both(page: Any, slack_demo: None) -> None:
    login(page, "member01@demo.example")
    page.goto("/me/accounts")
    assert "slack-member01" in page.locator("#me-links").inner_text()
    page.check("input[name=channel][value=both]")
    page.click("#me-channel button")
    settled(page)
    assert page.locator("input[name=channel][value=both]").is_checked()
    screenshot(page, "people-me-accounts")


def test_admin_imports_links_from_excel_csv(page: Any, slack_demo: None, tmp_path: Path) -> None:
    login(page, "admin@demo.example")
    page.goto("/settings/integrations/slack/links")
    bad = tmp_path / "bad.csv"
    bad.write_bytes("メールアドレス,アカウントID\r\nnobody@x.example,UE2E0002\r\n".encode("cp932"))
    page.set_input_files("input[name=file]", str(bad))
    page.click("#transfer-import button")
    settled(page)
    assert "nobody@x.example" in page.locator("#transfer-errors").inner_text()
    screenshot(page, "people-csv-errors")
    good = tmp_path / "good.csv"
    good.write_bytes(
        "メールアドレス,アカウントID\r\nmember02@demo.example,UE2E0002\r\n".encode("cp932")
    )
    page.set_input_files("input[name=file]", str(good))
    page.click("#transfer-import button")
    settled(page)
    assert "member02@demo.example" in page.locator("#transfer-added").inner_text()
    screenshot(page, "people-csv-preview")
    page.click("#transfer-preview button")
    page.wait_for_url("**/settings/integrations/slack/members**")
    screenshot(page, "people-csv-applied")
