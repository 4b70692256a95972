"""Chatwork DMs through the delivery pipeline: markup, refresh, 401, 429, gone rooms, pacing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.accounts.models import User
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, Integration, IntegrationState
from portal.integrations.providers.base import Message, ProviderRateLimited
from portal.integrations.providers.chatwork import name_matching
from portal.integrations.providers.chatwork.client import (
    ChatworkClient,
    parse_expiry,
    render_message,
)
from portal.integrations.registry import providers
from portal.notifications import dispatcher
from portal.notifications.models import Delivery, DeliveryState
from portal.notifications.services import send_test_message
from sandbox.testing import RunningSandbox
from tests.integrations.chatwork_flow import connect, demo_members
from tests.integrations.conftest import calls

POST = "chatwork:POST /api/v2/rooms/{id}/messages"


@pytest.fixture
def linked(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> tuple[Integration, User]:
    demo_members(tenants["own"], make_user, 4)
    response, _ = connect(admin_client, sandbox)
    assert response.status_code == 302
    integration = db.session.scalar(select(Integration))
    name_matching.apply_suggestions(integration, actor=tenants["admin"])
    user = db.session.scalar(select(User).where(User.email == "member01@demo.example"))
    assert db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    return integration, user


def chatwork_delivery(user: User) -> Delivery:
    return db.session.scalar(
        select(Delivery)
        .where(Delivery.channel == "chatwork")
        .join(Delivery.notification)
        .where(Delivery.notification.has(recipient_id=user.id))
        .order_by(Delivery.id.desc())
    )


def test_render_message_uses_info_markup_and_keeps_members_text_inside() -> None:
    text = render_message(Message("1on1のお知らせ", "明日[/info][To:1]です", "https://x.example/1"))
    assert text.startswith("[info][title]1on1のお知らせ[/title]") and text.endswith("[/info]")
    assert "https://x.example/1" in text and "[To:1]" not in text and text.count("[/info]") == 1


@pytest.mark.parametrize(
    ("data", "seconds"),
    [({"expires_in": "1800"}, 1800), ({"expires_in": 900}, 900), ({"expires_in": "90.5"}, 90)],
)
def test_expires_in_read_defensively(data: dict[str, Any], seconds: int) -> None:
    now = utcnow()
    expiry = parse_expiry(data, now)
    assert expiry is not None and abs((expiry - now).total_seconds() - seconds) < 1


def test_expires_in_as_epoch_milliseconds_or_missing() -> None:
    assert parse_expiry({"expires_in": "1501138041000"}).year == 2017
    assert parse_expiry({"expires_in": None}) is None
    assert parse_expiry({"expires_in": "soon"}) is None


def test_test_message_arrives_in_the_direct_chat(
    admin_client: Any, sandbox: RunningSandbox, linked: tuple[Integration, User]
) -> None:
    _, user = linked
    response = admin_client.post_form(f"/settings/integrations/chatwork/members/{user.id}/test")
    assert response.status_code == 302
    dispatcher.run_due()
    delivery = chatwork_delivery(user)
    assert delivery.state is DeliveryState.SENT and delivery.provider_message_id
    got = sandbox.control("GET", f"/_control/messages?provider=chatwork&user={user.email}")
    bodies = (
        [m["body"] for m in got["messages"]] if isinstance(got, dict) else [m["body"] for m in got]
    )
    assert any(b.startswith("[info][title]") for b in bodies)


def test_refreshes_before_expiry_and_stores_the_newest_refresh_token(
    sandbox: RunningSandbox, linked: tuple[Integration, User]
) -> None:
    integration, user = linked
    sandbox.configure(chatwork_rotate_refresh_tokens=True)
    old = integration.get_secrets()
    integration.token_expires_at = utcnow() + timedelta(seconds=30)
    db.session.commit()
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.id
            == db.session.scalar(
                select(AccountLink.chat_account_id).where(AccountLink.user_id == user.id)
            )
        )
    )
    ChatworkClient(integration).send_direct_message(account, Message("t", "b"))
    new = integration.get_secrets()
    assert new["access_token"] != old["access_token"]
    assert (
        new["refresh_token"] != old["refresh_token"]
        and new["client_secret"] == old["client_secret"]
    )
    assert integration.token_expires_at > utcnow() + timedelta(minutes=5)


def test_401_refreshes_once_then_needs_reconnect(
    sandbox: RunningSandbox, linked: tuple[Integration, User]
) -> None:
    integration, user = linked
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.example"))
    # An access token Chatwork no longer accepts although it has not reached its expiry.
    integration.set_secrets({**integration.get_secrets(), "access_token": "expired.jwt.value"})
    db.session.commit()
    send_test_message(user, actor=admin)
    dispatcher.run_due()
    first = chatwork_delivery(user)
    assert first.state is DeliveryState.SENT, (
        first.last_error_code,
        first.reason,
    )  # refreshed once
    db.session.refresh(integration)
    access = integration.get_secrets()["access_token"]
    sandbox.control("POST", "/_control/faults/revoke-token", {"token": access})
    send_test_message(user, actor=admin)
    dispatcher.run_due()
    db.session.refresh(integration)
    assert integration.state is IntegrationState.NEEDS_RECONNECT
    assert chatwork_delivery(user).state is not DeliveryState.SENT


def test_429_is_honoured_with_the_reset_time(
    sandbox: RunningSandbox, linked: tuple[Integration, User]
) -> None:
    integration, user = linked
    sandbox.configure(rate_limit_overrides={"chatwork:api": [[1, 60]]})
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.id
            == db.session.scalar(
                select(AccountLink.chat_account_id).where(AccountLink.user_id == user.id)
            )
        )
    )
    client = ChatworkClient(integration)
    caught: ProviderRateLimited | None = None
    for _ in range(6):  # GET /me and /contacts count too
        try:
            client.send_direct_message(account, Message("t", "b"))
        except ProviderRateLimited as problem:
            caught = problem
            break
    assert caught is not None
    assert caught.retry_after is not None and 1 < caught.retry_after <= 61


def test_gone_room_flags_the_link(
    sandbox: RunningSandbox, linked: tuple[Integration, User]
) -> None:
    _, user = linked
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.example"))
    sandbox.control(
        "POST", "/_control/faults/deactivate-user", {"provider": "chatwork", "user": user.email}
    )
    send_test_message(user, actor=admin)
    dispatcher.run_due()
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    db.session.refresh(link)
    assert link.flagged_reason == "room_gone"
    assert calls(sandbox, POST) >= 1


def test_pacing_stays_under_300_per_5_minutes(linked: tuple[Integration, User]) -> None:
    integration, _ = linked
    budget = providers.get_or_404("chatwork").pacing(integration)
    assert budget.key == f"chatwork:{integration.external_id}"
    assert budget.burst + budget.rate * 300 <= 300 and budget.rate >= 0.9


def test_backlog_shows_an_estimated_drain_time(
    admin_client: Any, linked: tuple[Integration, User]
) -> None:
    _, user = linked
    admin = db.session.scalar(select(User).where(User.email == "admin@demo.example"))
    for _ in range(12):
        send_test_message(user, actor=admin)
    page = admin_client.get("/settings/integrations/chatwork").text
    assert 'id="chatwork-backlog"' in page and "12" in page
