"""Notification channels: the transport registry is the one list of channels (issue 14, item 5).

A chat provider registered under its own key (the scripted fake, ``FAKE_KEY``) is a channel at
once: routing, the delivery log's filter and the API description know it, its failures hand
over to e-mail, and a key nobody registered is refused when a delivery is written.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.registry import providers
from portal.notifications import dispatcher, services
from portal.notifications.models import Delivery, DeliveryState
from portal.notifications.transports import transports
from portal.notifications.transports.chat import ChatTransport
from portal.notifications.transports.email import EmailTransport
from tests.notifications.helpers import FAKE_KEY


def test_channels_are_email_then_every_registered_provider(fake_provider: Any) -> None:
    assert transports.keys() == ["email", "slack", "chatwork", "teams", FAKE_KEY]
    assert isinstance(transports.default, EmailTransport)
    chat = transports.get(FAKE_KEY)
    assert isinstance(chat, ChatTransport) and chat.provider is fake_provider
    assert transports.name(FAKE_KEY) == "Fake"
    assert transports.name("slack") == "Slack"
    assert transports.get("nowhere") is None and "nowhere" not in transports


def test_fallbacks_end_at_email(fake_provider: Any) -> None:
    assert transports.fallback_for(FAKE_KEY) == "email"
    assert transports.fallback_for("email") is None  # e-mail is the last resort
    # A channel whose provider was removed while its rows waited: they still reach the member.
    assert transports.fallback_for("retired") == "email"


def test_without_the_fake_its_key_is_no_channel() -> None:
    """The fake is registered per test (fixture), never posing as a real provider."""
    assert FAKE_KEY not in transports
    assert transports.keys() == ["email", "slack", "chatwork", "teams"]


def test_a_delivery_names_a_registered_channel(tenants: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown notification channel"):
        Delivery(organization_id=tenants["own"].id, channel="pigeon")
    assert Delivery(organization_id=tenants["own"].id, channel="email").channel == "email"


def test_route_names_the_fakes_own_channel(
    tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    route = services.route(tenants["member"])
    assert route.channel == FAKE_KEY and route.reason == "linked"


def test_a_row_on_a_channel_that_is_gone_goes_by_email(
    tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    """DL-14 for a whole provider: rows queued for it are never lost when it is unregistered."""
    link_member(tenants["member"])
    notification, _new = services.create_notification(
        tenants["own"], tenants["member"], title="t", body="b"
    )
    db.session.commit()
    providers.unregister(FAKE_KEY)
    dispatcher.run_due()
    rows = {
        row.channel: row
        for row in db.session.scalars(
            select(Delivery).where(Delivery.notification_id == notification.id)
        )
    }
    assert rows[FAKE_KEY].state is DeliveryState.FAILED
    assert rows[FAKE_KEY].last_error_code == "integration_unavailable"
    assert rows["email"].state is DeliveryState.SENT
    assert rows["email"].reason == f"fallback:{FAKE_KEY}:integration_unavailable"
    assert fake_provider.calls == 0


def test_delivery_log_filters_by_any_registered_channel(
    client: Any, tenants: dict[str, Any], fake_provider: Any, link_member: Any
) -> None:
    link_member(tenants["member"])
    services.create_notification(tenants["own"], tenants["member"], title="Title-DM-7", body="b")
    services.create_notification(tenants["own"], tenants["admin"], title="Title-Mail-7", body="b")
    db.session.commit()
    client.login(tenants["admin"])
    page = client.get(f"/deliveries?channel={FAKE_KEY}")
    assert page.status_code == 200
    assert f'value="{FAKE_KEY}" selected' in page.text
    assert "Title-DM-7" in page.text and "Title-Mail-7" not in page.text
    assert client.get("/deliveries?channel=pigeon").status_code == 400


def test_openapi_lists_the_registered_channels(client: Any, fake_provider: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    delivery = spec["components"]["schemas"]["Delivery"]["properties"]
    assert delivery["channel"]["enum"] == transports.keys()
    assert FAKE_KEY in delivery["channel"]["enum"]
    assert "(Slack, Chatwork, Microsoft Teams, Fake)" in spec["info"]["description"]
