"""Members link their own Microsoft account by signing in to the company's tenant (issue 15,
item 1): msal's authorization-code flow with PKCE and a nonce against the sandbox's Entra."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from sqlalchemy import select

from portal.accounts.permissions import Role
from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, LinkMethod
from sandbox.config import DEMO_TENANT_ID, SAMPLE_TENANT_ID
from sandbox.microsoft.models import user_guid
from sandbox.testing import RunningSandbox
from tests.integrations import self_link_flow as flow
from tests.integrations.self_link_flow import own_link
from tests.integrations.teams_flow import connect

M37_OID = user_guid(DEMO_TENANT_ID, "member37@demo.example")


@pytest.fixture
def m37(tenants: dict[str, Any], make_user: Any) -> Any:
    return make_user(tenants["own"], Role.MEMBER, "member37@demo.example", "別 アドレス")


@pytest.fixture
def member_client(
    app: Flask, preview_only: None, admin_client: Any, sandbox: RunningSandbox, m37: Any
) -> Any:
    """Teams connected (no automatic e-mail links), and member37's browser signed in."""
    assert connect(admin_client).status_code == 302
    assert db.session.scalar(select(Integration).filter_by(provider="teams")) is not None
    browser = app.test_client()
    browser.login(m37)
    return browser


def edited(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced (a member editing the address bar)."""
    parts = urlsplit(url)
    values = {k: v[0] for k, v in parse_qs(parts.query).items()}
    values.update(changes)
    return parts._replace(query=urlencode(values)).geturl()


def test_member_links_own_microsoft_account(member_client: Any, m37: Any) -> None:
    assert own_link(m37, "teams") is None
    assert 'data-testid="connect-teams"' in member_client.get("/me/accounts").text
    url = flow.start(member_client, "teams")
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    # The company's own tenant, never common/organizations; PKCE S256; a hashed nonce.
    assert parts.path.endswith(f"/{DEMO_TENANT_ID}/oauth2/v2.0/authorize")
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"] == "openid profile" and len(params["nonce"]) == 64
    response = member_client.get(flow.sign_in(url, M37_OID))
    assert response.status_code == 302
    link = own_link(m37, "teams")
    assert link is not None and link.method is LinkMethod.SELF and link.confirmed_at
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None and account.external_id == M37_OID  # oid, never sub or e-mail


def test_a_code_from_another_tenant_is_refused(member_client: Any, m37: Any) -> None:
    url = flow.start(member_client, "teams").replace(DEMO_TENANT_ID, SAMPLE_TENANT_ID)
    stranger = user_guid(SAMPLE_TENANT_ID, "member01@sample.example")
    member_client.get(flow.sign_in(url, stranger))
    assert own_link(m37, "teams") is None


def test_an_id_token_for_another_nonce_is_refused(member_client: Any, m37: Any) -> None:
    url = edited(flow.start(member_client, "teams"), nonce="0" * 64)
    member_client.get(flow.sign_in(url, M37_OID))
    assert own_link(m37, "teams") is None
    assert "別のサインイン" in member_client.get("/me/accounts").text


def test_a_swapped_pkce_challenge_is_refused(member_client: Any, m37: Any) -> None:
    url = edited(flow.start(member_client, "teams"), code_challenge="A" * 43)
    member_client.get(flow.sign_in(url, M37_OID))
    assert own_link(m37, "teams") is None


def test_cancelled_at_microsoft(member_client: Any, m37: Any) -> None:
    member_client.get(flow.sign_in(flow.start(member_client, "teams"), M37_OID, "cancel"))
    assert own_link(m37, "teams") is None
