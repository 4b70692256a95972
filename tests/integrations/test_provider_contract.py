"""The provider contract over every provider the portal registers (issue 14, item 7).

A new provider joins by registering: the parametrization reads the registry, and a provider
without a way to be connected here (``CONNECT``) fails ``test_every_provider_can_be_connected``
instead of going unchecked. The fourth provider (tests/fourth_provider) runs the same checks.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration
from portal.integrations.registry import providers
from sandbox.testing import RunningSandbox
from tests.integrations import chatwork_flow, slack_flow, teams_flow
from tests.integrations.provider_contract import (
    check_client,
    check_descriptor,
    check_pages,
    check_steps,
)

KEYS = providers.keys()


def _slack(client: Any, sandbox: RunningSandbox) -> ChatAccount:
    assert slack_flow.install(client, sandbox).status_code == 302
    return _account("member01@demo.example")


def _chatwork(client: Any, sandbox: RunningSandbox) -> ChatAccount:
    response, _registered = chatwork_flow.connect(client, sandbox)
    assert response.status_code == 302
    contacts = select(ChatAccount).where(ChatAccount.extra["room_id"].as_string().is_not(None))
    account = db.session.scalars(contacts.order_by(ChatAccount.id)).first()
    assert account is not None
    return account


def _teams(client: Any, sandbox: RunningSandbox) -> ChatAccount:
    assert teams_flow.connect(client).status_code == 302
    sandbox.control("POST", "/_control/teams/install", {"user": "member01@demo.example"})
    return _account("member01@demo.example")


#: How each provider is connected against the sandbox; returns an account a DM can reach.
CONNECT: dict[str, Callable[[Any, RunningSandbox], ChatAccount]] = {
    "slack": _slack,
    "chatwork": _chatwork,
    "teams": _teams,
}


def _account(email: str) -> ChatAccount:
    account = db.session.scalar(select(ChatAccount).where(ChatAccount.email == email))
    assert account is not None
    db.session.refresh(account)
    return account


def test_every_provider_can_be_connected() -> None:
    assert set(KEYS) == set(CONNECT)


def test_providers_are_listed_in_the_vendors_order() -> None:
    assert KEYS[:3] == ["slack", "chatwork", "teams"]


@pytest.mark.parametrize("key", KEYS)
def test_descriptor_is_complete(app: Flask, key: str) -> None:
    check_descriptor(providers.get_or_404(key), app)


@pytest.mark.parametrize("key", KEYS)
def test_steps_are_data_the_engine_runs(app: Flask, key: str) -> None:
    check_steps(providers.get_or_404(key), app)


@pytest.mark.parametrize("key", KEYS)
def test_setup_page_shows_the_first_step(admin_client: Any, key: str) -> None:
    check_pages(providers.get_or_404(key), admin_client)


@pytest.mark.parametrize("key", KEYS)
def test_client_behaves_on_the_sandbox(
    live_server: str, admin_client: Any, sandbox: RunningSandbox, key: str
) -> None:
    reachable = CONNECT[key](admin_client, sandbox)
    integration = db.session.scalar(select(Integration).filter_by(provider=key))
    assert integration is not None
    check_client(providers.get_or_404(key), integration, reachable)


def test_the_step_module_is_free_of_flask() -> None:
    """wizard.py imports nothing from Flask (or the app) at run time: only under TYPE_CHECKING."""
    source = Path(__file__).parents[2] / "portal" / "integrations" / "wizard.py"
    tree = ast.parse(source.read_text())
    runtime = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    modules = [
        (node.module or "") if isinstance(node, ast.ImportFrom) else node.names[0].name
        for node in runtime
    ]
    assert not [m for m in modules if m.startswith(("flask", "portal")) or m.startswith(".")]
