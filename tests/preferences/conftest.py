"""Fixtures for categories and preferences: signed-in clients, a member linked on two tools."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from portal.integrations.models import LinkMethod
from portal.notifications import api_keys
from tests.people.people_helpers import connected, link, slack


@pytest.fixture
def admin_client(client: Any, tenants: dict[str, Any]) -> Any:
    client.login(tenants["admin"])
    return client


@pytest.fixture
def member_client(app: Flask, tenants: dict[str, Any]) -> Any:
    browser = app.test_client()
    browser.login(tenants["member"])
    return browser


@pytest.fixture
def two_tools(tenants: dict[str, Any]) -> dict[str, Any]:
    """The demo member linked on Slack and on Chatwork."""
    member = tenants["member"]
    slack_integration, slack_accounts = slack(tenants["own"], accounts=1)
    chatwork, chatwork_accounts = connected(
        tenants["own"], "chatwork", [{"external_id": "9001", "name": "Chatwork 太郎"}]
    )
    link(slack_integration, member, slack_accounts[0], LinkMethod.MANUAL)
    link(chatwork, member, chatwork_accounts[0], LinkMethod.MANUAL)
    return {"slack": slack_integration, "chatwork": chatwork}


@pytest.fixture
def api_key(tenants: dict[str, Any]) -> str:
    _row, key = api_keys.create(tenants["own"], "tests", actor=None)
    return key
