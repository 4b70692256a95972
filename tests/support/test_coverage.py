"""Coverage dashboard: each provider's reasons with their next steps, and credential warnings
that follow what each provider renews by itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import LinkMethod
from portal.support import coverage
from portal.support.services import integration_warnings
from tests.people.people_helpers import connected, link, slack


def test_chatwork_reasons_come_from_name_matching(tenants: Any, make_user: Any) -> None:
    own = tenants["own"]
    suggested = make_user(own, name="佐藤 翔太")
    ambiguous = make_user(own, name="田中 花子")
    integration, _accounts = connected(
        own,
        "chatwork",
        [{"name": "佐藤 翔太"}, {"name": "田中 花子"}, {"name": "田中花子"}],
    )
    result = coverage.compute(integration)
    # Contacts have no e-mail: no member is ever "no e-mail match" on Chatwork.
    assert result.reasons == {"suggestion_available": 1, "ambiguous_name": 1, "not_contact": 2}
    assert result.members == 4 and result.linked == 0
    assert suggested.id and ambiguous.id


def test_teams_links_without_the_bot_do_not_count_as_working(tenants: Any, make_user: Any) -> None:
    integration, accounts = connected(
        tenants["own"],
        "teams",
        [
            {"name": "管理者", "email": "admin@demo.example"},
            {
                "name": "メンバー",
                "email": "member@demo.example",
                "extra": {"teams_user_id": "29:x"},
            },
            {
                "name": "退職予定",
                "email": "leaving@demo.example",
                "extra": {"teams_user_id": "29:y"},
            },
        ],
    )
    leaving = make_user(tenants["own"], email="leaving@demo.example")
    link(integration, tenants["admin"], accounts[0], LinkMethod.EMAIL)
    link(integration, tenants["member"], accounts[1], LinkMethod.BOT_INSTALL)
    # The bot was removed later: a DM failed and flagged the link with the same reason.
    link(
        integration, leaving, accounts[2], LinkMethod.BOT_INSTALL
    ).flagged_reason = "bot_not_installed"
    db.session.commit()
    result = coverage.compute(integration)
    assert result.linked == 3
    assert result.reasons == {"bot_not_installed": 2}
    assert result.working == 1


def test_deactivated_account_is_told_apart_from_no_match(tenants: Any, make_user: Any) -> None:
    integration, accounts = slack(tenants["own"], accounts=2)
    gone = make_user(tenants["own"], email="person1@demo.example")
    make_user(tenants["own"], email="person2@demo.example")
    accounts[0].is_active = False
    db.session.commit()
    result = coverage.compute(integration)
    assert result.reasons["account_deactivated"] == 1  # gone
    assert result.reasons["match_available"] == 1
    assert result.reasons["no_email_match"] == 2  # admin and member
    assert gone.id


def test_overview_links_each_reason_to_its_next_step(app: Flask, client: Any, tenants: Any) -> None:
    connected(tenants["own"], "chatwork", [{"name": "誰か 別人"}])
    client.login(tenants["admin"])
    page = client.get("/settings/integrations").text
    assert 'class="coverage-not_contact"' in page
    assert "/settings/integrations/chatwork#chatwork-not-contacts" in page
    assert "/settings/integrations/chatwork/sync" in page  # re-sync after the contact request
    support_client: Any = app.test_client()
    support_client.login(tenants["support"])
    support = support_client.get("/settings/integrations?org=demo").text
    assert "/settings/integrations/chatwork?org=demo#chatwork-not-contacts" in support
    assert "/settings/integrations/chatwork/sync" not in support  # read-only


def test_warnings_follow_what_the_provider_renews(app: Flask, tenants: Any) -> None:
    soon = utcnow() + timedelta(days=3)
    rotating, _ = slack(tenants["own"])
    rotating.config = {**rotating.config, "rotation": True}
    rotating.token_expires_at = soon
    chatwork, _ = connected(tenants["own"], "chatwork", [])
    chatwork.token_expires_at = utcnow() - timedelta(hours=5)  # refreshed on next use
    fixed, _ = slack(tenants["other"])
    fixed.token_expires_at = soon
    db.session.commit()
    assert integration_warnings(rotating) == []
    assert integration_warnings(chatwork) == []
    assert any("expires" in w or "期限" in w for w in integration_warnings(fixed))


def test_client_secret_expiry_warns_two_weeks_ahead(app: Flask, tenants: Any) -> None:
    teams, _ = connected(tenants["own"], "teams", [])
    app.config["MS_CLIENT_SECRET_EXPIRES_AT"] = (utcnow() + timedelta(days=60)).date().isoformat()
    assert integration_warnings(teams) == []
    app.config["MS_CLIENT_SECRET_EXPIRES_AT"] = (utcnow() + timedelta(days=10)).isoformat()
    [warning] = integration_warnings(teams)
    assert "client secret" in warning or "クライアントシークレット" in warning
    app.config["MS_CLIENT_SECRET_EXPIRES_AT"] = "next spring"  # not a date: ignored, logged
    assert integration_warnings(teams) == []
