"""Webhook fixtures: an endpoint of the ``demo`` organization pointed at the sandbox receiver."""

from __future__ import annotations

from typing import Any

import pytest

from portal.webhooks import endpoints, events
from sandbox.testing import RunningSandbox
from tests.notifications.conftest import api_key  # noqa: F401  (a fixture for the API tests)


class Receiver:
    """The sandbox's webhook receiver, through its control API."""

    def __init__(self, box: RunningSandbox) -> None:
        self.box = box
        self.url = f"{box.http_url}/hooks/test"

    def configure(self, **values: Any) -> None:
        self.box.control("POST", "/_control/webhooks", values)

    def read(self) -> dict[str, Any]:
        return self.box.control("GET", "/_control/webhooks")  # type: ignore[no-any-return]


@pytest.fixture
def receiver(sandbox: RunningSandbox) -> Receiver:
    return Receiver(sandbox)


@pytest.fixture
def endpoint(tenants: dict[str, Any], receiver: Receiver) -> Any:
    """An endpoint subscribed to every event; ``endpoint.secret_text`` is its secret."""
    fields = endpoints.validate(receiver.url, "tests", list(events.TYPES), False)
    row, secret = endpoints.create(tenants["own"], tenants["admin"], fields)
    row.secret_text = secret
    receiver.configure(secret=secret)
    return row
