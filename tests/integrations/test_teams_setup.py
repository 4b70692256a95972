"""Microsoft Teams admin consent against the sandbox, and the OAuth cases that apply to it.

Admin consent has no code and no token exchange: what the callback must prove instead is the
tenant (OA-17) — a client-credentials token for it, whose ``tid`` is that tenant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import Integration, IntegrationState
from portal.integrations.providers.teams.tokens import token_tenant_id
from sandbox.testing import RunningSandbox
from tests.integrations.conftest import calls
from tests.integrations.teams_flow import (
    DEMO_TENANT_ID,
    SAMPLE_TENANT_ID,
    connect,
    consent,
    start_consent,
    with_query,
)

TOKEN = "microsoft:POST /login/{id}/oauth2/v2.0/token"


def teams_integrations() -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Integration)
            .where(Integration.provider == "teams", Integration.state == IntegrationState.CONNECTED)
        )
        or 0
    )


def test_consent_shows_tenant_who_and_rights_note(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    page = admin_client.get("/settings/integrations/teams").text
    assert 'id="setup-start"' in page and 'hx-boost="false"' in page
    assert "Teams Administrator" in page or "Teams管理者" in page
    url = start_consent(admin_client)
    assert "/organizations/v2.0/adminconsent?" in url
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in url
    assert "%2Fteams%2Foauth%2Fcallback&state=" in url
    response = admin_client.get(consent(url))
    assert response.status_code == 302, response.text[:500]
    assert response.headers["Location"].endswith("/settings/integrations/teams")
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration.state is IntegrationState.CONNECTED
    assert integration.external_id == DEMO_TENANT_ID
    assert integration.display_name == "デモ株式会社"
    assert integration.connected_by_id == tenants["admin"].id
    page = admin_client.get("/settings/integrations/teams").text
    assert DEMO_TENANT_ID in page and tenants["admin"].name in page
    installs = admin_client.get("/settings/integrations/teams/bot-installs").text
    assert "Wistant bot" in installs and 'hx-trigger="every 3s"' in installs
    # The Graph directory was read (member05/15/25 have no mailbox: their UPN is the address).
    from portal.integrations.models import ChatAccount

    emails = set(db.session.scalars(select(ChatAccount.email)))
    assert "member05@demo.example" in emails and "member01@demo.example" in emails
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "integration.connected")
    ).one()
    assert event.after["external_id"] == DEMO_TENANT_ID


def test_oa01_no_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    before = calls(sandbox, TOKEN)
    response = admin_client.get(f"/teams/oauth/callback?tenant={DEMO_TENANT_ID}&admin_consent=True")
    assert response.status_code == 400
    assert teams_integrations() == 0 and calls(sandbox, TOKEN) == before


def test_oa04_replayed_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(start_consent(admin_client))
    assert admin_client.get(callback).status_code == 302
    before = calls(sandbox, TOKEN)
    assert admin_client.get(callback).status_code == 400
    assert calls(sandbox, TOKEN) == before


def test_oa05_expired_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(start_consent(admin_client))
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=False):
        response = admin_client.get(callback)
    assert response.status_code == 400
    assert "expired" in response.text or "期限" in response.text or "時間" in response.text
    assert teams_integrations() == 0


def test_oa06_slack_state_on_teams_callback(admin_client: Any, sandbox: RunningSandbox) -> None:
    from tests.integrations.slack_flow import query_of, start_install

    state = query_of(start_install(admin_client))["state"]
    response = admin_client.get(
        f"/teams/oauth/callback?tenant={DEMO_TENANT_ID}&admin_consent=True&state={state}"
    )
    assert response.status_code == 400 and teams_integrations() == 0


def test_oa09_consent_cancelled(admin_client: Any, sandbox: RunningSandbox) -> None:
    before = calls(sandbox, TOKEN)
    response = admin_client.get(consent(start_consent(admin_client), decision="cancel"))
    assert response.status_code == 302
    page = admin_client.get("/settings/integrations/teams").text
    assert "Global Administrator" in page or "グローバル管理者" in page
    assert teams_integrations() == 0 and calls(sandbox, TOKEN) == before


def test_oa17_edited_tenant_not_consented_is_refused(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    callback = consent(start_consent(admin_client))
    # The attacker edits the redirect to another tenant (サンプル商事, which never consented).
    response = admin_client.get(with_query(callback, tenant=SAMPLE_TENANT_ID))
    assert response.status_code == 400
    assert "unauthorized_client" in response.text
    assert teams_integrations() == 0


def test_oa17_malformed_tenant_is_refused(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(start_consent(admin_client))
    before = calls(sandbox, TOKEN)
    response = admin_client.get(with_query(callback, tenant="../../evil.example"))
    assert response.status_code == 400 and teams_integrations() == 0
    assert calls(sandbox, TOKEN) == before


def test_oa17_tenant_bound_to_another_company_is_refused(
    client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    client.login(tenants["other_admin"])
    assert connect(client).status_code == 302  # サンプル商事's admin connected the demo tenant
    other = db.session.scalar(select(Integration).filter_by(provider="teams"))
    client.post_form("/logout")
    client.login(tenants["admin"])
    response = connect(client)
    assert response.status_code == 400
    assert "another organization" in response.text or "別の組織" in response.text
    db.session.refresh(other)
    assert other.state is IntegrationState.CONNECTED and teams_integrations() == 1


def test_tid_of_issued_token_is_checked() -> None:
    import jwt

    token = jwt.encode({"tid": DEMO_TENANT_ID.upper()}, "k" * 32, algorithm="HS256")
    assert token_tenant_id(token) == DEMO_TENANT_ID
    assert token_tenant_id("not-a-token") is None


def test_disconnect_and_reconnect_are_audited(admin_client: Any, sandbox: RunningSandbox) -> None:
    assert connect(admin_client).status_code == 302
    response = admin_client.post_form("/settings/integrations/teams/disconnect")
    assert response.status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration.state is IntegrationState.DISCONNECTED and integration.secrets is None
    page = admin_client.get("/settings/integrations/teams").text
    assert 'id="setup-start"' in page
    assert connect(admin_client).status_code == 302
    db.session.refresh(integration)
    assert integration.state is IntegrationState.CONNECTED
    actions = list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("integration.%"))
            .order_by(AuditEvent.id)
        )
    )
    assert actions == [
        "integration.connected",
        "integration.disconnected",
        "integration.connected",
    ]
