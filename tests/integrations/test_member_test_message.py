"""「テストメッセージを送信」 on a provider's member list tests that provider.

A member linked on Slack and on Chatwork (or Teams) gets the Chatwork (Teams) page's test on
Chatwork (Teams), although routing would prefer Slack; the worker sends it like any other
delivery. A member without an account on the page's tool has no button, and a forged POST
queues nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

import demodata
from portal.accounts.models import User
from portal.extensions import db
from portal.integrations import linking
from portal.integrations.models import ChatAccount, Integration, IntegrationState
from portal.notifications import dispatcher
from portal.notifications.models import Delivery, DeliveryState, Notification
from sandbox.chatwork.seed import display_name
from sandbox.testing import RunningSandbox
from tests.integrations.chatwork_flow import connect as connect_chatwork
from tests.integrations.chatwork_flow import demo_members
from tests.integrations.teams_flow import connect as connect_teams

HX = {"HX-Request": "true"}
SANDBOX_NAMES = {"slack": "slack", "chatwork": "chatwork", "teams": "microsoft"}


@pytest.fixture
def member(tenants: dict[str, Any], make_user: Any, slack: Integration) -> User:
    """member01, linked on Slack (the tool routing prefers), as the demo members are."""
    demo_members(tenants["own"], make_user, 4)
    user = db.session.scalar(select(User).where(User.email == "member01@demo.example"))
    assert user is not None
    linking.link_account(slack, user, slack_account(user.email), actor=tenants["admin"])
    return user


@pytest.fixture
def chatwork(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], member: User
) -> Integration:
    """Chatwork connected too, member01 linked there to their own contact."""
    response, _ = connect_chatwork(admin_client, sandbox)
    assert response.status_code == 302, response.text[:300]
    integration = db.session.scalar(select(Integration).filter_by(provider="chatwork"))
    assert integration is not None
    contact = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id,
            ChatAccount.name == display_name(demodata.person(1)),
        )
    )
    assert contact is not None
    linking.link_account(integration, member, contact, actor=tenants["admin"])
    return integration


@pytest.fixture
def teams(
    live_server: str,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    member: User,
) -> Integration:
    """Teams connected too, member01 added the bot and is linked there."""
    assert connect_teams(admin_client).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration is not None
    sandbox.control("POST", "/_control/teams/install", {"user": member.email})
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id, ChatAccount.email == member.email
        )
    )
    assert account is not None
    linking.link_account(integration, member, account, actor=tenants["admin"])
    return integration


def slack_account(email: str) -> ChatAccount:
    account = db.session.scalar(select(ChatAccount).where(ChatAccount.email == email))
    assert account is not None
    return account


def linked_account(integration: Integration, user: User) -> ChatAccount:
    link = linking.find_link(integration, user.id)
    assert link is not None
    return link.chat_account


def received(sandbox: RunningSandbox, provider: str, email: str, text: str) -> int:
    """How many of ``email``'s messages on ``provider`` in the sandbox contain ``text``."""
    messages = sandbox.control(
        "GET", f"/_control/messages?provider={SANDBOX_NAMES[provider]}&user={email}"
    )
    return sum(text in json.dumps(m, ensure_ascii=False) for m in messages)


def queued_tests() -> list[Delivery]:
    return list(db.session.scalars(select(Delivery).where(Delivery.reason == "test")))


def press_test(client: Any, provider: str, user: User) -> Any:
    response = client.post_form(
        f"/settings/integrations/{provider}/members/{user.id}/test", headers=HX
    )
    assert response.status_code == 200, response.text[:500]
    assert f'id="integrations-member-{user.id}"' in response.text
    return response


def assert_sent_on(
    sandbox: RunningSandbox, integration: Integration, user: User, response: Any
) -> None:
    """The flash names the tool and the account; the worker sent the test there, only there."""
    account = linked_account(integration, user)
    tool = {"slack": "Slack", "chatwork": "Chatwork", "teams": "Microsoft Teams"}
    assert tool[integration.provider] in response.text and account.name in response.text
    (delivery,) = queued_tests()
    assert delivery.channel == integration.provider
    assert (delivery.integration_id, delivery.chat_account_id) == (integration.id, account.id)
    dispatcher.run_due()
    db.session.refresh(delivery)
    assert delivery.state is DeliveryState.SENT and delivery.provider_message_id
    notification = db.session.get(Notification, delivery.notification_id)
    assert notification is not None and [d.id for d in notification.deliveries] == [delivery.id]
    title = notification.title
    assert received(sandbox, integration.provider, user.email, title) == 1
    for other in {"slack", "chatwork", "teams"} - {integration.provider}:
        assert received(sandbox, other, user.email, title) == 0


def test_chatwork_page_tests_chatwork_not_slack(
    admin_client: Any,
    sandbox: RunningSandbox,
    slack: Integration,
    chatwork: Integration,
    member: User,
) -> None:
    dispatcher.run_due()  # the link notices, which do go to Slack
    response = press_test(admin_client, "chatwork", member)
    assert_sent_on(sandbox, chatwork, member, response)


def test_teams_page_tests_teams_not_slack(
    admin_client: Any,
    sandbox: RunningSandbox,
    slack: Integration,
    teams: Integration,
    member: User,
) -> None:
    dispatcher.run_due()
    response = press_test(admin_client, "teams", member)
    assert_sent_on(sandbox, teams, member, response)


def test_slack_page_tests_slack_even_for_a_member_who_chose_email(
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    slack: Integration,
    chatwork: Integration,
    member: User,
) -> None:
    # The member's channel choice is for their notifications; the admin tests the tool.
    tenants["own"].allow_channel_choice = True
    member.channel_preference = "email"
    db.session.commit()
    dispatcher.run_due()
    response = press_test(admin_client, "slack", member)
    assert_sent_on(sandbox, slack, member, response)


def test_a_failing_test_falls_back_to_email_like_any_delivery(
    admin_client: Any,
    sandbox: RunningSandbox,
    slack: Integration,
    chatwork: Integration,
    member: User,
) -> None:
    dispatcher.run_due()
    sandbox.control(
        "POST", "/_control/faults/deactivate-user", {"provider": "chatwork", "user": member.email}
    )
    press_test(admin_client, "chatwork", member)
    dispatcher.run_due()
    chat = db.session.scalar(
        select(Delivery).where(Delivery.reason == "test", Delivery.channel == "chatwork")
    )
    assert chat is not None and chat.state is DeliveryState.FAILED
    assert chat.last_error_code == "room_gone"
    fallback = db.session.scalar(
        select(Delivery).where(
            Delivery.notification_id == chat.notification_id, Delivery.channel == "email"
        )
    )
    assert fallback is not None and fallback.state is DeliveryState.SENT
    title = db.session.get(Notification, chat.notification_id).title  # type: ignore[union-attr]
    assert received(sandbox, "slack", member.email, title) == 0
    log = admin_client.get("/deliveries?channel=chatwork").text
    assert f'id="delivery-{chat.id}" class="state-row-failed"' in log


def connected(organization_id: int, provider: str) -> Integration:
    """A connected integration row (nothing is sent in these tests)."""
    integration = Integration(
        organization_id=organization_id,
        provider=provider,
        state=IntegrationState.CONNECTED,
        external_id=f"{provider}-{organization_id}",
        display_name="デモ株式会社",
        config={},
    )
    db.session.add(integration)
    db.session.commit()
    return integration


@pytest.mark.parametrize("provider", ["slack", "chatwork", "teams"])
def test_no_button_and_no_test_without_a_link_on_that_tool(
    admin_client: Any, tenants: dict[str, Any], provider: str
) -> None:
    own = tenants["own"]
    integration = connected(own.id, provider)
    linked, unlinked = tenants["admin"], tenants["member"]
    account = ChatAccount(
        organization_id=own.id, integration_id=integration.id, external_id="A1", name="連携 済"
    )
    db.session.add(account)
    db.session.commit()
    linking.link_account(integration, linked, account, actor=linked)
    # Linked on another tool does not count: this page tests this tool.
    other = connected(own.id, "slack" if provider != "slack" else "chatwork")
    elsewhere = ChatAccount(
        organization_id=own.id, integration_id=other.id, external_id="B1", name="他 ツール"
    )
    db.session.add(elsewhere)
    db.session.commit()
    linking.link_account(other, unlinked, elsewhere, actor=linked)
    before = db.session.scalar(select(func.count()).select_from(Notification))

    page = admin_client.get(f"/settings/integrations/{provider}/members").text
    rows = {
        user.id: page.split(f'id="integrations-member-{user.id}"')[1].split("</tr>")[0]
        for user in (linked, unlinked)
    }
    assert "send-test" in rows[linked.id] and "send-test" not in rows[unlinked.id]

    url = f"/settings/integrations/{provider}/members/{unlinked.id}/test"
    refused = admin_client.post_form(url, headers=HX)
    assert refused.status_code == 422
    assert "send-test" not in refused.text and 'class="flash flash-error"' in refused.text
    assert unlinked.name in refused.text
    plain = admin_client.post_form(url)
    assert plain.status_code == 302
    assert "flash-error" in admin_client.get(plain.headers["Location"]).text
    foreign = admin_client.post_form(
        f"/settings/integrations/{provider}/members/{tenants['other_member'].id}/test"
    )
    assert foreign.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(Notification)) == before
