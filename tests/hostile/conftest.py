"""The hostile-input tests share the delivery pipeline's fixtures (API keys, a scripted
provider, linked members) and the Bot Framework key server of the Teams auth tests.

They send thousands of requests with one key: its rate limit (tested in tests/notifications)
is lifted here so it does not answer in their place.
"""

from __future__ import annotations

import pytest

from tests.integrations.test_teams_bot_auth import keys  # noqa: F401
from tests.notifications.conftest import api_key, fake_provider, link_member  # noqa: F401


@pytest.fixture(autouse=True)
def unlimited_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("portal.api.views.RATE", 1e9)
    monkeypatch.setattr("portal.api.views.BURST", 1_000_000_000)
