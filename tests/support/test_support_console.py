"""Support console: search, member page (history, deliveries, why), health; all audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations import linking
from portal.integrations.models import IntegrationState, LinkMethod
from portal.notifications.models import DeliveryState
from portal.notifications.services import create_notification
from portal.support import coverage
from portal.support import services as support_services
from tests.people.people_helpers import link, slack


def test_search_any_organization_is_audited(client: Any, tenants: Any) -> None:
    client.login(tenants["support"])
    page = client.get("/support?q=member%40")
    assert page.status_code == 200
    assert "member@demo.example" in page.text and "member@sample.example" in page.text
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "support.searched"))
    assert event is not None and event.data["results"] == 2


def test_member_page_joins_history_and_explained_deliveries(client: Any, tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    linking.link_account(integration, member, accounts[0], actor=tenants["admin"])
    linking.link_account(integration, member, accounts[1], actor=tenants["admin"])
    notification, _new = create_notification(
        tenants["own"], member, title="請求書のお知らせ", body="…"
    )
    db.session.commit()
    delivery = notification.deliveries[0]
    delivery.state = DeliveryState.SENT
    delivery.attempts = 4
    delivery.last_error_code = "ratelimited"
    delivery.sent_at = utcnow()
    db.session.commit()
    client.login(tenants["support"])
    page = client.get(f"/support/members/{member.id}?org=demo&notification={notification.id}")
    assert page.status_code == 200
    assert accounts[0].name in page.text and accounts[1].name in page.text
    assert "history-link-created" in page.text
    assert tenants["admin"].email in page.text  # who linked
    assert "retried 3 times" in page.text or "3 回再試行" in page.text  # rate limit, then sent
    assert 'id="support-why"' in page.text
    viewed = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "support.viewed")
    ).all()
    assert viewed and viewed[-1].organization_id == tenants["own"].id


def test_member_of_another_organization_is_404(client: Any, tenants: Any) -> None:
    client.login(tenants["support"])
    response = client.get(f"/support/members/{tenants['other_member'].id}?org=demo")
    assert response.status_code == 404
    own = tenants["member"]
    assert client.get(f"/support/members/{own.id}?org=demo&notification=999").status_code == 404


def test_health_shows_state_expiry_and_last_error(client: Any, tenants: Any) -> None:
    integration, _accounts = slack(tenants["own"])
    integration.token_expires_at = utcnow() + timedelta(days=3)
    integration.state = IntegrationState.NEEDS_RECONNECT
    integration.last_error = "invalid_auth"
    db.session.commit()
    client.login(tenants["support"])
    page = client.get("/support/health?org=demo")
    assert page.status_code == 200
    assert "invalid_auth" in page.text
    assert 'id="support-health-slack"' in page.text
    assert "expires" in page.text or "期限" in page.text


def test_coverage_reasons(tenants: Any, make_user: Any) -> None:
    integration, accounts = slack(tenants["own"], accounts=3)
    matchable = make_user(tenants["own"], email="person2@demo.example")
    flagged = link(integration, tenants["admin"], accounts[0], LinkMethod.MANUAL)
    flagged.flagged_reason = "user_disabled"
    db.session.commit()
    result = coverage.compute(integration)
    assert result.members == 3
    assert result.linked == 1
    assert result.reasons["flagged"] == 1
    assert result.reasons["match_available"] == 1  # matchable
    assert result.reasons["no_email_match"] == 1  # tenants["member"]
    assert matchable.id


def test_overview_shows_coverage_and_next_steps(client: Any, tenants: Any) -> None:
    integration, _accounts = slack(tenants["own"])
    integration.token_expires_at = utcnow() + timedelta(days=2)
    db.session.commit()
    client.login(tenants["admin"])
    page = client.get("/settings/integrations")
    assert 'id="coverage-slack"' in page.text
    assert "coverage-no_email_match" in page.text
    assert "/settings/integrations/slack/members?state=unlinked" in page.text
    assert "credential-warning" in page.text


def test_why_says_where_each_sent_delivery_went(tenants: Any) -> None:
    """Each transport tells where its delivery went: the DM's account, the e-mail's address;
    nothing when the account is gone."""
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    linking.link_account(integration, member, accounts[0], actor=tenants["admin"])
    tenants["own"].allow_channel_choice = True
    member.channel_preference = "both"
    notification, _new = create_notification(
        tenants["own"], member, title="評価面談のお知らせ", body="…"
    )
    db.session.commit()
    for delivery in notification.deliveries:
        delivery.state = DeliveryState.SENT
        delivery.sent_at = utcnow()
    db.session.commit()
    assert {d.channel for d in notification.deliveries} == {"slack", "email"}
    lines = " ".join(support_services.why_not(tenants["own"], member, notification))
    assert f"{accounts[0].name} へのダイレクトメッセージで" in lines
    assert f"{member.email} 宛てに" in lines
    for delivery in notification.deliveries:
        delivery.chat_account_id = None
    assert "ダイレクトメッセージで" not in " ".join(
        support_services.why_not(tenants["own"], member, notification)
    )
