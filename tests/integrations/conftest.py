"""Fixtures for the Slack integration tests: a signed-in admin and a connected workspace."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import Integration
from sandbox.testing import RunningSandbox
from tests.integrations.slack_flow import install


def stamp_outside_window(skew: int) -> int:
    """A request timestamp *skew* seconds from now, rounded away from now.

    ``int(time.time()) + 301`` is only 300.0x seconds ahead when the clock is just
    under a whole second, and the request reaches the check a little later still,
    so on a slow runner it landed inside the 300-second window (a red CI).
    """
    now = time.time()
    return math.ceil(now) + skew if skew > 0 else math.floor(now) + skew


def calls(sandbox: RunningSandbox, operation: str) -> int:
    """How many times the sandbox served ``operation`` (e.g. "slack:oauth.v2.access")."""
    return int(sandbox.control("GET", "/_control/requests")["counts"].get(operation, 0))


@pytest.fixture
def admin_client(client: Any, tenants: dict[str, Any]) -> Any:
    """The test client, signed in as the demo organization's admin."""
    client.login(tenants["admin"])
    return client


@pytest.fixture
def preview_only(tenants: dict[str, Any]) -> None:
    """デモ株式会社 turned automatic linking off: e-mail matches wait in the preview.

    Request it before ``slack`` (or ``teams``) for tests about linking by hand.
    """
    tenants["own"].auto_link_by_email = False
    db.session.commit()


@pytest.fixture
def slack(admin_client: Any, sandbox: RunningSandbox) -> Integration:
    """Slack installed for デモ株式会社 (T0DEMO0001, #general), directory synced (and, unless
    ``preview_only`` came first, the members who existed then linked by e-mail)."""
    response = install(admin_client, sandbox)
    assert response.status_code == 302, response.text[:500]
    integration = db.session.scalar(select(Integration).filter_by(provider="slack"))
    assert integration is not None
    return integration
