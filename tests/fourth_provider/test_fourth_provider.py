"""A fourth provider, registered from tests/ alone, runs through the whole portal: the contract,
its wizard on the generic pages, its directory and e-mail auto-link, its coverage reasons, the
CSP and the configuration (issue 14, item 7); delivery by the worker is test_delivery.py."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.config import ConfigError, check_production, provider_url_defaults, sandbox_urls
from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, Integration, IntegrationState
from portal.security import content_security_policy
from tests.integrations.provider_contract import (
    check_client,
    check_descriptor,
    check_pages,
    check_steps,
)

from . import FourthProvider
from .flow import PAGE, come_back, connect, start
from .service import SERVICE


def test_contract(app: Flask, admin_client: Any, fourth: FourthProvider) -> None:
    check_descriptor(fourth, app)
    check_steps(fourth, app)
    check_pages(fourth, admin_client)


def test_client_contract(
    admin_client: Any, members: dict[str, Any], fourth: FourthProvider
) -> None:
    integration = connect(admin_client)
    reachable = db.session.scalar(select(ChatAccount).filter_by(external_id="F001"))
    assert reachable is not None
    check_client(fourth, integration, reachable)


def test_settings_and_csp_come_from_the_provider(app: Flask, admin_client: Any) -> None:
    assert provider_url_defaults()["FOURTH_AUTHORIZE_URL"] == (
        "https://consent.fourth.example/oauth/authorize"
    )
    assert sandbox_urls("http://sbx", "https://sbx")["FOURTH_AUTHORIZE_URL"] == (
        "http://sbx/fourth/oauth/authorize"
    )
    assert app.config["FOURTH_CLIENT_ID"] == "fourth-sandbox-client"
    assert start(admin_client)["client_id"] == "fourth-sandbox-client"
    app.config["FOURTH_AUTHORIZE_URL"] = "https://consent.fourth.example/oauth/authorize"
    assert "https://consent.fourth.example" in content_security_policy(app).split("form-action")[1]
    production = {
        **provider_url_defaults(),
        "SECRET_KEY": "x" * 40,
        "PORTAL_ENCRYPTION_KEYS": "b" * 44,
        "PUBLIC_BASE_URL": "https://portal.example",
    }
    check_production(production)
    with pytest.raises(ConfigError, match="FOURTH_AUTHORIZE_URL"):
        check_production({**production, "FOURTH_AUTHORIZE_URL": "http://127.0.0.1/x"})


def test_the_form_step_refuses_then_keeps_what_was_typed(admin_client: Any) -> None:
    refused = admin_client.post_form(f"{PAGE}/workspace", {"workspace": "nope"})
    assert refused.status_code == 422
    assert 'id="fourth-workspace-error"' in refused.text and 'value="NOPE"' in refused.text
    start(admin_client)
    # Back from the service without finishing: the form again, marked, with the ID kept.
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    assert 'id="fourth-returned"' in page.text and 'value="W0FOURTH"' in page.text


def test_a_refused_exchange_goes_back_to_the_form(admin_client: Any) -> None:
    query = start(admin_client)
    SERVICE.refuse_exchange = "invalid_client"
    answer = come_back(admin_client, query)
    assert answer.status_code == 400
    assert 'id="fourth-message"' in answer.text and 'value="W0FOURTH"' in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(Integration).filter_by(provider="fourth")) is None


def test_a_callback_of_no_wizard_shows_the_form(admin_client: Any) -> None:
    answer = admin_client.get("/fourth/oauth/callback?code=x&state=forged")
    assert answer.status_code == 400 and 'id="fourth-workspace-form"' in answer.text


def test_setup_links_by_e_mail_and_explains_coverage(
    admin_client: Any, members: dict[str, Any]
) -> None:
    integration = connect(admin_client)
    assert integration.state is IntegrationState.CONNECTED
    assert integration.external_id == "W0FOURTH"
    assert integration.get_secrets()["access_token"] in SERVICE.tokens
    accounts = {a.external_id for a in db.session.scalars(select(ChatAccount))}
    assert accounts == {"F001", "F002", "F003", "F004"}  # the leaver is not synced
    linked = {
        link.user_id
        for link in db.session.scalars(
            select(AccountLink).where(AccountLink.integration_id == integration.id)
        )
    }
    assert linked == {members[k].id for k in ("member01", "member02", "guest03")}

    page = admin_client.get(PAGE)
    assert page.status_code == 200
    assert 'id="fourth-workspace-id">W0FOURTH<' in page.text
    assert 'data-guests="1"' in page.text

    cards = admin_client.get("/settings/integrations")
    assert 'id="provider-fourth"' in cards.text and "data:image/svg+xml" in cards.text
    section = cards.text.split('id="coverage-fourth"')[1]
    # admin, member and member06 were never invited; the guest is linked but unreachable.
    assert "Not invited to the Fourth workspace: <strong>3</strong>" in section
    assert "Linked to a guest account, which gets no DMs: <strong>1</strong>" in section


def test_help_texts_name_every_registered_tool(
    admin_client: Any,
) -> None:
    """ "My accounts"' empty state and the policy's auto-link option list the registry's tools;
    the auto-link option only those whose directory links by e-mail (not Chatwork)."""
    empty_state = admin_client.get("/me/accounts").get_data(as_text=True)
    assert "システム管理者が Slack、Chatwork、Microsoft Teams、またはFourth Chat を連携すると" in (
        empty_state
    )
    policy = admin_client.get("/settings/notification-policy").get_data(as_text=True)
    assert "チャットツール（Slack、Microsoft Teams、Fourth Chat）で同じメールアドレス" in policy
