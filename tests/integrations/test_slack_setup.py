"""Add to Slack: the wizard against the sandbox, and the OAuth attack cases OA-01…OA-28.

"Nothing stored" is checked as: no Integration row with a token, and no extra token request at
the sandbox (``slack:oauth.v2.access`` count).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select, text

from portal.accounts.permissions import Role
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import (
    ChatAccount,
    Integration,
    IntegrationState,
    SetupSession,
)
from portal.integrations.providers.slack import SlackProvider
from portal.integrations.wizard import SetupError
from sandbox.testing import RunningSandbox
from tests.integrations.conftest import calls
from tests.integrations.slack_flow import consent, install, query_of, start_install

EXCHANGE = "slack:oauth.v2.access"


def stored_integrations() -> int:
    return (
        db.session.scalar(
            select(func.count()).select_from(Integration).where(Integration.secrets.is_not(None))
        )
        or 0
    )


def test_install_shows_workspace_channel_and_who(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    page = admin_client.get("/settings/integrations/slack")
    assert "Add to Slack" in page.text and 'hx-boost="false"' in page.text
    response = install(admin_client, sandbox)
    assert response.headers["Location"].endswith("/settings/integrations/slack")
    integration = db.session.scalar(select(Integration))
    assert integration.state is IntegrationState.CONNECTED
    assert integration.external_id == "T0DEMO0001"
    assert integration.config["channel_name"] == "#general"
    assert integration.connected_by_id == tenants["admin"].id
    page = admin_client.get("/settings/integrations/slack").text
    assert "デモ株式会社" in page and "#general" in page and tenants["admin"].name in page
    # The directory was read in the background (huey immediate mode in tests).
    names = set(db.session.scalars(select(ChatAccount.external_id)))
    assert len(names) > 30 and "USLACKBOT" not in names
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "integration.connected")
    ).one()
    assert event.after["external_id"] == "T0DEMO0001"
    assert "xox" not in str(event.after) + str(event.before)


def test_oa01_no_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    before = calls(sandbox, EXCHANGE)
    response = admin_client.get("/slack/oauth/callback?code=abc")
    assert response.status_code == 400
    assert "Slack" in response.text
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa02_unknown_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    start_install(admin_client)
    before = calls(sandbox, EXCHANGE)
    response = admin_client.get("/slack/oauth/callback?code=abc&state=" + "A" * 43)
    assert response.status_code == 400
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa03_state_delivered_in_another_session(
    app: Any, admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> None:
    callback = consent(sandbox, start_install(admin_client))
    other = app.test_client()
    other.login(make_user(tenants["own"], Role.ADMIN, "admin2@demo.example"))
    before = calls(sandbox, EXCHANGE)
    assert other.get(callback).status_code == 400
    # The same admin in a second browser is another session too.
    second = app.test_client()
    second.login(tenants["admin"])
    assert second.get(callback).status_code == 400
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa04_replayed_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(sandbox, start_install(admin_client))
    assert admin_client.get(callback).status_code == 302
    before = calls(sandbox, EXCHANGE)
    replay = admin_client.get(callback)
    assert replay.status_code == 400
    assert calls(sandbox, EXCHANGE) == before


def test_oa05_expired_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(sandbox, start_install(admin_client))
    before = calls(sandbox, EXCHANGE)
    with time_machine.travel(utcnow() + timedelta(minutes=11)):
        response = admin_client.get(callback)
    assert response.status_code == 400
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa06_slack_state_on_another_providers_callback(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    """Slack's state presented on Chatwork's callback (the real second provider) is refused."""
    callback = consent(sandbox, start_install(admin_client))
    before = calls(sandbox, EXCHANGE)
    response = admin_client.get(callback.replace("/slack/", "/chatwork/"))
    assert response.status_code == 400
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa07_unexpected_issuer(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(sandbox, start_install(admin_client))
    before = calls(sandbox, EXCHANGE)
    response = admin_client.get(callback + "&iss=https%3A%2F%2Fevil.example")
    assert response.status_code == 400
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before


def test_oa08_admin_lost_the_role_meanwhile(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    callback = consent(sandbox, start_install(admin_client))
    tenants["admin"].role = Role.MEMBER
    db.session.commit()
    before = calls(sandbox, EXCHANGE)
    assert admin_client.get(callback).status_code == 403
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before
    # Moving the admin to another organization cannot leave a usable state behind: the setup
    # row's (user, organization) foreign key forbids it, and the check in from_callback stays.


def test_oa09_cancelled_on_slack(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(sandbox, start_install(admin_client), decision="cancel")
    assert "error=access_denied" in callback
    before = calls(sandbox, EXCHANGE)
    response = admin_client.get(callback)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings/integrations/slack")
    assert stored_integrations() == 0 and calls(sandbox, EXCHANGE) == before
    assert db.session.scalar(select(SetupSession.consumed_at)) is not None
    # The state is consumed: the same answer again is refused.
    assert admin_client.get(callback).status_code == 400


@pytest.mark.parametrize("status", [500, 503])
def test_oa10_token_endpoint_fails(admin_client: Any, sandbox: RunningSandbox, status: int) -> None:
    first_url = start_install(admin_client)
    callback = consent(sandbox, first_url)
    sandbox.control("POST", "/_control/faults/fail", {"match": EXCHANGE, "status": status})
    response = admin_client.get(callback)
    assert response.status_code == 502
    assert "sandbox-slack-client-secret" not in response.text
    assert stored_integrations() == 0
    # Retrying starts a new flow: a new state and a new verifier.
    second_url = start_install(admin_client)
    assert query_of(second_url)["state"] != query_of(first_url)["state"]
    assert query_of(second_url)["code_challenge"] != query_of(first_url)["code_challenge"]
    assert admin_client.get(consent(sandbox, second_url)).status_code == 302


def test_oa10_code_already_used(admin_client: Any, sandbox: RunningSandbox) -> None:
    callback = consent(sandbox, start_install(admin_client))
    code = query_of(callback)["code"]
    # Somebody else redeemed the code first (invalid_code at Slack).
    sandbox.state.slack.codes[code].used = True
    response = admin_client.get(callback)
    assert response.status_code == 502 and "invalid_code" in response.text
    assert stored_integrations() == 0


def test_oa11_token_request_carries_redirect_uri_and_verifier(
    admin_client: Any, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slack_sdk import WebClient

    seen: dict[str, Any] = {}
    original = WebClient.oauth_v2_access

    def spy(self: WebClient, **kwargs: Any) -> Any:
        seen.update(kwargs, base_url=self.base_url)
        return original(self, **kwargs)

    monkeypatch.setattr(WebClient, "oauth_v2_access", spy)
    authorize = start_install(admin_client)
    verifier_record = db.session.scalar(select(SetupSession))
    assert admin_client.get(consent(sandbox, authorize)).status_code == 302
    assert seen["redirect_uri"] == query_of(authorize)["redirect_uri"]
    assert seen["redirect_uri"].endswith("/slack/oauth/callback")
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(seen["code_verifier"].encode()).digest()
    ).rstrip(b"=")
    assert challenge.decode() == query_of(authorize)["code_challenge"]
    assert seen["base_url"].startswith("https://")
    assert verifier_record is not None


def test_oa12_authorization_url(admin_client: Any) -> None:
    query = query_of(start_install(admin_client))
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43  # 32 random bytes, url-safe
    assert "code_verifier" not in query and "session" not in str(query).lower()
    assert query["state"] != query["code_challenge"]
    assert set(query["scope"].split(",")) == {
        "users:read",
        "users:read.email",
        "im:write",
        "chat:write",
        "incoming-webhook",
    }
    record = db.session.scalar(select(SetupSession))
    assert record.state_hash == hashlib.sha256(query["state"].encode()).hexdigest()
    raw = db.session.execute(text("SELECT data FROM setup_sessions")).scalar_one()
    assert raw.startswith("enc:fernet:")


def test_oa15_callback_headers(admin_client: Any, sandbox: RunningSandbox) -> None:
    response = admin_client.get(consent(sandbox, start_install(admin_client)))
    assert response.status_code == 302 and "code=" not in response.headers["Location"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_oa16_workspace_of_another_organization(
    app: Any, sandbox: RunningSandbox, tenants: dict[str, Any], admin_client: Any
) -> None:
    other = app.test_client()
    other.login(tenants["other_admin"])
    assert install(other, sandbox).status_code == 302
    theirs = db.session.scalar(select(Integration))
    sealed = theirs.secrets.stored
    response = install(admin_client, sandbox)
    assert response.status_code == 400
    assert "another organization" in response.text or "別の組織" in response.text
    db.session.refresh(theirs)
    assert theirs.secrets.stored == sealed and theirs.organization_id == tenants["other"].id
    assert db.session.scalar(select(func.count()).select_from(Integration)) == 1


def test_oa19_fewer_scopes_than_needed() -> None:
    token = {
        "access_token": "xoxb-1",
        "token_type": "bot",
        "team": {"id": "T1", "name": "x"},
        "scope": "users:read,im:write,chat:write,incoming-webhook",
    }
    with pytest.raises(SetupError, match=r"users:read\.email"):
        SlackProvider().build_connection({"token": token})


def test_oa21_oa22_tokens_encrypted_and_never_rendered(
    admin_client: Any, sandbox: RunningSandbox, slack: Integration
) -> None:
    tokens = [
        t["value"]
        for t in sandbox.control("GET", "/_control/tokens?provider=slack")
        if t.get("value")
    ] or [slack.get_secrets()["access_token"]]
    token = slack.get_secrets()["access_token"]
    assert token in tokens or tokens
    raw = db.session.execute(text("SELECT secrets FROM integrations")).scalar_one()
    assert raw.startswith("enc:fernet:") and token not in raw
    visible = db.session.execute(
        text("SELECT config, display_name, last_error FROM integrations")
    ).one()
    assert token not in str(visible)
    audit = db.session.execute(text("SELECT before, after, data FROM audit_events")).all()
    assert token not in str(audit)
    for path in (
        "/settings/integrations",
        "/settings/integrations/slack",
        "/settings/integrations/slack/members",
    ):
        assert token not in admin_client.get(path).text


def test_reconnect_same_workspace_keeps_links(
    admin_client: Any, sandbox: RunningSandbox, slack: Integration
) -> None:
    assert (
        admin_client.post_form("/settings/integrations/slack/members/auto-link").status_code == 302
    )
    linked = db.session.scalar(text("SELECT count(*) FROM account_links"))
    assert linked >= 1
    assert admin_client.post_form("/settings/integrations/slack/disconnect").status_code == 302
    db.session.refresh(slack)
    assert slack.state is IntegrationState.DISCONNECTED and slack.secrets is None
    page = admin_client.get("/settings/integrations/slack").text
    assert "Add to Slack" in page
    assert install(admin_client, sandbox).status_code == 302
    db.session.refresh(slack)
    assert slack.state is IntegrationState.CONNECTED
    assert db.session.scalar(text("SELECT count(*) FROM account_links")) == linked
