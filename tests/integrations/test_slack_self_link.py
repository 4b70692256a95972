"""Members link their own Slack account with Sign in with Slack (issue 15, item 1), against the
sandbox's OpenID Connect endpoints; the OAuth cases of the member flow by ID (OA-01…OA-09)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from portal.accounts.permissions import Role
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, LinkMethod
from portal.integrations.providers.base import SignInRefused
from portal.integrations.providers.slack.sign_in import ISSUER, verify_id_token
from portal.support import coverage
from sandbox.config import DEMO_SLACK_TEAM_ID, SAMPLE_SLACK_TEAM_ID, SLACK_CLIENT_ID
from sandbox.ids import short_id
from sandbox.signing import SigningKey, base_claims
from sandbox.testing import RunningSandbox
from tests.integrations import self_link_flow as flow
from tests.integrations.self_link_flow import own_link
from tests.integrations.slack_flow import query_of

#: member37's Slack profile has another address (demo-corp.example): no e-mail match.
M37_SLACK = short_id("U", DEMO_SLACK_TEAM_ID, "member37@demo.example")


@pytest.fixture
def m37(tenants: dict[str, Any], make_user: Any) -> Any:
    return make_user(tenants["own"], Role.MEMBER, "member37@demo.example", "別 アドレス")


@pytest.fixture
def member_client(app: Flask, slack: Integration, m37: Any) -> Any:
    """A second browser, signed in as member37, once the admin has installed Slack."""
    other = app.test_client()
    other.login(m37)
    return other


def start(client: Any) -> str:
    return flow.start(client, "slack")


def sign_in(
    authorize_url: str, user: str = M37_SLACK, decision: str = "allow", **extra: str
) -> str:
    return flow.sign_in(authorize_url, user, decision, **extra)


def test_member_links_own_slack_account(member_client: Any, m37: Any) -> None:
    assert own_link(m37) is None  # the sync could not match the other address
    page = member_client.get("/me/accounts")
    assert 'data-testid="connect-slack"' in page.text
    url = start(member_client)
    params = query_of(url)
    assert params["scope"] == "openid email profile"
    assert params["team"] == DEMO_SLACK_TEAM_ID
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43  # OA-12: ≥ 256 bits
    assert params["state"] != params["nonce"]
    response = member_client.get(sign_in(url))
    assert response.status_code == 302 and response.headers["Location"].endswith("/me/accounts")
    assert response.headers["Cache-Control"] == "no-store"  # OA-15
    link = own_link(m37)
    assert link is not None and link.method is LinkMethod.SELF
    assert link.confirmed_at is not None
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None and account.external_id == M37_SLACK
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "link.created").order_by(AuditEvent.id.desc())
    )
    assert event is not None and event.after["method"] == "self"
    assert event.actor_id == m37.id
    page = member_client.get("/me/accounts")
    assert "本人が連携" in page.text
    assert 'data-testid="connect-slack"' not in page.text
    # The coverage counts members who linked themselves.
    integration = db.session.get(Integration, link.integration_id)
    assert integration is not None and coverage.compute(integration).methods["self"] == 1


def test_oa01_oa02_no_or_unknown_state(member_client: Any, m37: Any) -> None:
    for query in ("code=abc", "code=abc&state=" + "x" * 43):
        response = member_client.get(f"/me/accounts/slack/callback?{query}")
        assert response.status_code == 302
    assert own_link(m37) is None


def test_oa03_state_delivered_in_another_members_session(
    member_client: Any, app: Flask, tenants: dict[str, Any], m37: Any
) -> None:
    callback = sign_in(start(member_client))
    intruder = app.test_client()
    intruder.login(tenants["member"])
    intruder.get(callback)
    assert own_link(tenants["member"]) is None and own_link(m37) is None


def test_oa04_replayed_callback(member_client: Any, m37: Any, sandbox: RunningSandbox) -> None:
    callback = sign_in(start(member_client))
    member_client.get(callback)
    first = own_link(m37)
    assert first is not None
    db.session.delete(first)
    db.session.commit()
    member_client.get(callback)
    assert own_link(m37) is None


def test_oa05_expired_state(member_client: Any, m37: Any) -> None:
    callback = sign_in(start(member_client))
    with time_machine.travel(utcnow() + timedelta(minutes=11)):
        member_client.get(callback)
    assert own_link(m37) is None


def test_oa06_state_on_another_providers_callback(member_client: Any, m37: Any) -> None:
    callback = sign_in(start(member_client))
    member_client.get(callback.replace("/slack/", "/chatwork/"))
    member_client.get(callback.replace("/slack/", "/teams/"))
    assert own_link(m37) is None
    member_client.get(callback)  # the state was not spent by the wrong provider's URI
    assert own_link(m37) is not None


def test_oa09_cancelled_at_slack(member_client: Any, m37: Any) -> None:
    response = member_client.get(sign_in(start(member_client), decision="cancel"))
    assert response.status_code == 302
    assert own_link(m37) is None
    page = member_client.get("/me/accounts")
    assert "キャンセル" in page.text or "cancelled" in page.text


def test_another_workspace_is_refused(member_client: Any, m37: Any) -> None:
    other_user = short_id("U", SAMPLE_SLACK_TEAM_ID, "admin@sample.example")
    url = start(member_client) + f"&team={SAMPLE_SLACK_TEAM_ID}"
    member_client.get(sign_in(url, user=other_user, team=SAMPLE_SLACK_TEAM_ID))
    assert own_link(m37) is None
    page = member_client.get("/me/accounts")
    assert "デモ株式会社" in page.text  # the message names the company's workspace


def test_account_linked_to_someone_else_is_refused_and_audited(
    member_client: Any, m37: Any, tenants: dict[str, Any]
) -> None:
    admin = tenants["admin"]
    admin_link = own_link(admin)
    assert admin_link is not None  # the admin was linked by e-mail at install
    admin_slack = db.session.get(ChatAccount, admin_link.chat_account_id)
    assert admin_slack is not None
    member_client.get(sign_in(start(member_client), user=admin_slack.external_id))
    assert own_link(m37) is None
    link = own_link(admin)
    assert link is not None and link.chat_account_id == admin_slack.id
    refused = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "link.self_link_refused")
    )
    assert refused is not None and refused.actor_id == m37.id


def test_signing_in_confirms_an_email_match(
    app: Flask, slack: Integration, tenants: dict[str, Any]
) -> None:
    admin = tenants["admin"]
    link = own_link(admin)
    assert link is not None and link.confirmed_at is None
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None
    browser = app.test_client()
    browser.login(admin)
    browser.get(sign_in(start(browser), user=account.external_id))
    db.session.refresh(link)
    assert link.confirmed_at is not None and link.method is LinkMethod.EMAIL


@pytest.mark.parametrize(
    "problem", ["foreign key", "wrong nonce", "wrong audience", "wrong issuer", "expired"]
)
def test_forged_or_misdirected_id_tokens_are_refused(
    app: Flask, sandbox: RunningSandbox, problem: str
) -> None:
    claims: dict[str, Any] = {
        **base_claims(3600),
        "iss": ISSUER,
        "aud": SLACK_CLIENT_ID,
        "sub": M37_SLACK,
        "nonce": "expected",
    }
    key = sandbox.state.keys.slack
    if problem == "foreign key":
        key = SigningKey.generate("sbx-slack")  # same label, another key: kid unknown
    elif problem == "wrong nonce":
        claims["nonce"] = "another"
    elif problem == "wrong audience":
        claims["aud"] = "someone-else"
    elif problem == "wrong issuer":
        claims["iss"] = "https://evil.example"
    else:
        claims.update(base_claims(-60))
    with app.test_request_context():
        with pytest.raises(SignInRefused):
            verify_id_token(key.sign(claims), client_id=SLACK_CLIENT_ID, nonce="expected")
        valid = {**claims, **base_claims(3600), "nonce": "expected", "aud": SLACK_CLIENT_ID}
        valid["iss"] = ISSUER
        assert (
            verify_id_token(
                sandbox.state.keys.slack.sign(valid), client_id=SLACK_CLIENT_ID, nonce="expected"
            )["sub"]
            == M37_SLACK
        )
