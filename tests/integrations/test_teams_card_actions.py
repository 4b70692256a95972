"""Teams card actions (issue 17 item 5): 「確認しました」 and 「はい、私です」 as Adaptive Card
``Action.Execute``, pressed in the sandbox, arriving as ``adaptiveCard/action`` invokes at
POST /teams/messages (JWT first) and answered with the updated card.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import AccountLink
from portal.notifications import dispatcher
from portal.notifications.models import Notification
from portal.notifications.services import create_notification
from sandbox.microsoft.teams import card_actions, channel_token, invoke_activity
from sandbox.testing import RunningSandbox
from tests.integrations.teams_flow import connect

EMAIL = "member01@demo.example"


@pytest.fixture
def card(
    live_server: str,
    admin_client: Any,
    sandbox: RunningSandbox,
    make_user: Any,
    tenants: dict[str, Any],
) -> tuple[Notification, Any, Any]:
    """member01 linked by e-mail, the bot added, and a notification asking for 確認しました."""
    member = make_user(tenants["own"], email=EMAIL, name="メンバー 一")
    assert connect(admin_client).status_code == 302
    sandbox.control("POST", "/_control/teams/install", {"user": EMAIL})
    dispatcher.run_due()
    notification, _new = create_notification(
        tenants["own"], member, title="目標の確認", body="確認してください。", ack_requested=True
    )
    db.session.commit()
    dispatcher.run_due()
    activities = [
        a for a in sandbox.state.microsoft.activities if "目標の確認" in a.text and card_actions(a)
    ]
    assert activities, [a.text for a in sandbox.state.microsoft.activities]
    return notification, activities[-1], member


def verbs(activity: Any) -> list[str]:
    return [a["verb"] for a in card_actions(activity)]


def first_dm(sandbox: RunningSandbox) -> Any:
    """The link notice: the first card member01 received over the automatic link."""
    found = [a for a in sandbox.state.microsoft.activities if "confirm_link" in verbs(a)]
    assert len(found) == 1, [a.text for a in sandbox.state.microsoft.activities]
    return found[0]


def test_cards_offer_acknowledge_and_this_is_me_on_the_first_dm(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox
) -> None:
    _notification, activity, _member = card
    content = activity.body["attachments"][0]["content"]
    assert float(content["version"]) >= 1.4
    assert verbs(activity) == ["acknowledge"]
    assert verbs(first_dm(sandbox)) == ["confirm_link", "disown_link"]


def test_acknowledge_and_confirm_from_teams(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox
) -> None:
    notification, activity, member = card
    answer = sandbox.control(
        "POST", "/_control/teams/press", {"activity_id": activity.id, "verb": "acknowledge"}
    )
    assert answer["portal"] == 200
    db.session.refresh(notification)
    assert notification.acknowledged_by_id == member.id
    assert "acknowledge" not in verbs(activity)  # the sandbox shows the card the portal returned
    notice = first_dm(sandbox)
    sandbox.control(
        "POST", "/_control/teams/press", {"activity_id": notice.id, "verb": "confirm_link"}
    )
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == member.id))
    assert link is not None and link.confirmed_at is not None  # as /me's "this is me"
    assert verbs(notice) == []


def test_invoke_response_is_the_updated_card(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox, client: Any
) -> None:
    _notification, activity, _member = card
    state = sandbox.state
    tenant = state.microsoft.tenant_for(activity.tenant_id)
    user = tenant.find_user(activity.user_id)
    action = next(a for a in card_actions(activity) if a["verb"] == "acknowledge")
    invoke = invoke_activity(state, tenant, user, action)
    token = channel_token(state, invoke["serviceUrl"])
    response = client.post(
        "/teams/messages", json=invoke, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json["statusCode"] == 200
    assert response.json["type"] == "application/vnd.microsoft.card.adaptive"
    assert response.json["value"]["type"] == "AdaptiveCard"


def test_press_by_another_member_is_refused(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox, client: Any
) -> None:
    notification, activity, _member = card
    state = sandbox.state
    tenant = state.microsoft.tenant_for(activity.tenant_id)
    someone = next(u for u in tenant.users if u.id != activity.user_id)
    action = next(a for a in card_actions(activity) if a["verb"] == "acknowledge")
    invoke = invoke_activity(state, tenant, someone, action)
    token = channel_token(state, invoke["serviceUrl"])
    response = client.post(
        "/teams/messages", json=invoke, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200 and response.json["statusCode"] == 403
    db.session.refresh(notification)
    assert notification.acknowledged_at is None


def test_invoke_without_a_token_is_401(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox, client: Any
) -> None:
    notification, activity, _member = card
    state = sandbox.state
    tenant = state.microsoft.tenant_for(activity.tenant_id)
    user = tenant.find_user(activity.user_id)
    action = next(a for a in card_actions(activity) if a["verb"] == "acknowledge")
    assert (
        client.post(
            "/teams/messages", json=invoke_activity(state, tenant, user, action)
        ).status_code
        == 401
    )
    db.session.refresh(notification)
    assert notification.acknowledged_at is None


@pytest.mark.parametrize(
    "value",
    [
        {"action": {"type": "Action.Execute", "verb": 5, "data": {"value": "x"}}},
        {"action": {"type": "Action.Execute", "verb": "acknowledge", "data": {"value": 1}}},
        {"action": "acknowledge"},
        "x",
    ],
)
def test_invoke_with_wrong_types_is_400(
    card: tuple[Notification, Any, Any], sandbox: RunningSandbox, client: Any, value: Any
) -> None:
    notification, activity, _member = card
    state = sandbox.state
    tenant = state.microsoft.tenant_for(activity.tenant_id)
    user = tenant.find_user(activity.user_id)
    action = next(a for a in card_actions(activity) if a["verb"] == "acknowledge")
    invoke = {**invoke_activity(state, tenant, user, action), "value": value}
    token = channel_token(state, invoke["serviceUrl"])
    response = client.post(
        "/teams/messages", json=invoke, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    db.session.refresh(notification)
    assert notification.acknowledged_at is None
