"""Interactive DMs (issue 17 item 5): 「確認しました」, 「はい、私です」, 「私ではありません」
from a Slack button (POST /slack/interactions, WH-01…WH-06 for interactions), a Teams card action
(an ``adaptiveCard/action`` invoke at POST /teams/messages) and the Chatwork page link.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask_babel import force_locale, gettext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, Integration, LinkMethod
from portal.notifications import actions as dm
from portal.notifications import dispatcher
from portal.notifications.models import ActionToken, Delivery, Notification
from portal.notifications.services import create_notification
from portal.webhooks.models import WebhookEndpoint, WebhookEvent
from sandbox.slack.events import sign
from sandbox.slack.interactivity import block_actions, buttons
from sandbox.testing import RunningSandbox
from tests.integrations.conftest import stamp_outside_window

TEAM = "T0DEMO0001"
EMAIL = "member01@demo.example"


@pytest.fixture
def member(make_user: Any, tenants: dict[str, Any]) -> Any:
    """member01, made before the Slack install so the directory sync links them by e-mail."""
    return make_user(tenants["own"], email=EMAIL, name="メンバー 一")


@pytest.fixture
def subscribed(tenants: dict[str, Any]) -> WebhookEndpoint:
    """An endpoint of デモ株式会社 listening to notification.acknowledged."""
    endpoint = WebhookEndpoint(
        organization_id=tenants["own"].id,
        url="https://hooks.example.com/x",
        event_types=["notification.acknowledged"],
        secret={"k": "v"},
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def acknowledged_events() -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.type == "notification.acknowledged")
        )
        or 0
    )


def send(
    user: Any, organization: Any, *, ack: bool = True, title: str = "目標の確認"
) -> Notification:
    dispatcher.run_due()  # the link notices first: the worker sends due DMs side by side
    notification, _new = create_notification(
        organization, user, title=title, body="今期の目標を確認してください。", ack_requested=ack
    )
    db.session.commit()
    dispatcher.run_due()
    db.session.refresh(notification)
    return notification


def labels(key: str) -> str:
    """A button's label as a Japanese member sees it (「確認しました」… once the catalog has it)."""
    with force_locale("ja"):
        return dm.label(key)


def as_member(client: Any, user: Any) -> None:
    """The test client (signed in as the admin by the Slack fixture) becomes ``user``."""
    client.post_form("/logout")
    client.login(user)


def link_of(user: Any) -> AccountLink | None:
    return db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))


# --- Slack ---------------------------------------------------------------------------------------


def slack_dm(sandbox: RunningSandbox, title: str) -> Any:
    workspace = sandbox.state.slack.workspaces[TEAM]
    found = [m for m in workspace.messages if title in (m.text or "")]
    assert found, [m.text for m in workspace.messages]
    return found[-1]


def press_body(sandbox: RunningSandbox, message: Any, action_id: str, **changes: Any) -> bytes:
    workspace = sandbox.state.slack.workspaces[TEAM]
    button = next(b for b in buttons(message.blocks) if b["action_id"] == action_id)
    payload = block_actions(sandbox.state, workspace, message, button)
    for key, value in changes.items():
        payload[key] = value
    return urlencode({"payload": json.dumps(payload)}).encode()


def post_press(
    client: Any, body: bytes, stamp: int | None = None, secret: str | None = None
) -> Any:
    stamp = int(time.time()) if stamp is None else stamp
    signature = sign(body, stamp, secret) if secret else sign(body, stamp)
    return client.post(
        "/slack/interactions",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(stamp),
            "X-Slack-Signature": signature,
        },
    )


@pytest.fixture
def acked(
    member: Any, slack: Integration, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> tuple[Notification, Any]:
    """A notification asking for 「確認しました」, delivered to member01's Slack DM."""
    notification = send(member, tenants["own"])
    return notification, slack_dm(sandbox, "目標の確認")


def test_block_kit_carries_the_acknowledge_button_and_keeps_the_text(
    acked: tuple[Notification, Any],
) -> None:
    _notification, message = acked
    keys = [b["action_id"] for b in buttons(message.blocks)]
    assert keys == ["acknowledge"]
    assert message.text.startswith("目標の確認")  # the text fallback stays
    assert [b["text"]["text"] for b in buttons(message.blocks)] == [labels("acknowledge")]


def test_wh01_acknowledge_once_emits_one_event_and_updates_the_dm(
    acked: tuple[Notification, Any],
    client: Any,
    sandbox: RunningSandbox,
    subscribed: WebhookEndpoint,
    member: Any,
) -> None:
    notification, message = acked
    second = press_body(sandbox, message, "acknowledge")  # another press, signed on its own
    response = post_press(client, press_body(sandbox, message, "acknowledge"))
    assert response.status_code == 200, response.text
    db.session.refresh(notification)
    assert notification.acknowledged_at is not None
    assert notification.acknowledged_by_id == member.id
    assert acknowledged_events() == 1
    event = db.session.scalars(select(WebhookEvent)).one()
    assert event.payload["data"]["channel"] == "slack"
    assert event.payload["data"]["acknowledged_at"].endswith("Z")
    # The DM was replaced through response_url: no button left, the line says who and when.
    updated = slack_dm(sandbox, "目標の確認")
    assert buttons(updated.blocks) == []
    assert "メンバー 一" in updated.text
    # A second, freshly signed press changes nothing and emits nothing more.
    first = notification.acknowledged_at
    again = post_press(client, second)
    assert again.status_code == 200 and again.json["outcome"] == "done"
    db.session.refresh(notification)
    assert notification.acknowledged_at == first and acknowledged_events() == 1


def _unchanged(notification: Notification) -> None:
    db.session.refresh(notification)
    assert notification.acknowledged_at is None


def test_wh04_unsigned_press_is_401(
    acked: tuple[Notification, Any], client: Any, sandbox: Any
) -> None:
    notification, message = acked
    body = press_body(sandbox, message, "acknowledge")
    assert client.post("/slack/interactions", data=body).status_code == 401
    _unchanged(notification)


def test_wh06_press_signed_with_another_secret_is_401(
    acked: tuple[Notification, Any], client: Any, sandbox: Any
) -> None:
    notification, message = acked
    body = press_body(sandbox, message, "acknowledge")
    assert post_press(client, body, secret="another-apps-secret").status_code == 401
    _unchanged(notification)


@pytest.mark.parametrize("skew", [-301, 301])
def test_wh03_stale_press_is_401(
    acked: tuple[Notification, Any], client: Any, sandbox: Any, skew: int
) -> None:
    notification, message = acked
    body = press_body(sandbox, message, "acknowledge")
    assert post_press(client, body, stamp_outside_window(skew)).status_code == 401
    _unchanged(notification)


def test_replayed_press_is_401(
    acked: tuple[Notification, Any], client: Any, sandbox: Any, subscribed: Any
) -> None:
    _notification, message = acked
    body = press_body(sandbox, message, "acknowledge")
    stamp = int(time.time())
    assert post_press(client, body, stamp).status_code == 200
    assert post_press(client, body, stamp).status_code == 401
    assert acknowledged_events() == 1


def test_press_by_someone_else_is_refused(
    acked: tuple[Notification, Any], client: Any, sandbox: Any
) -> None:
    notification, message = acked
    body = press_body(sandbox, message, "acknowledge", user={"id": "U0SOMEONE1"})
    assert post_press(client, body).status_code == 403
    _unchanged(notification)


def test_forged_or_foreign_value_is_refused(
    acked: tuple[Notification, Any], client: Any, sandbox: Any, app: Any
) -> None:
    notification, message = acked
    button = buttons(message.blocks)[0]
    # Another integration's id, signed with our key: still not this workspace's notification.
    from itsdangerous import URLSafeSerializer

    other = URLSafeSerializer(app.config["SECRET_KEY"], salt=dm.REFERENCE_SALT).dumps(
        [notification.id, 999]
    )
    for value in (other, "forged", button["value"] + "x"):
        actions_ = [{"action_id": "acknowledge", "value": value, "type": "button"}]
        body = press_body(sandbox, message, "acknowledge", actions=actions_)
        assert post_press(client, body).status_code == 403
    _unchanged(notification)


@pytest.mark.parametrize(
    "changes",
    [
        {"actions": "acknowledge"},
        {"actions": [{"action_id": 5}]},
        {"actions": []},
        {"user": "U1"},
        {"team": {"id": 7}},
        {"response_url": None},
        {"type": "view_submission"},
    ],
)
def test_wh08_wrong_types_in_a_signed_payload_are_400(
    acked: tuple[Notification, Any], client: Any, sandbox: Any, changes: dict[str, Any]
) -> None:
    notification, message = acked
    response = post_press(client, press_body(sandbox, message, "acknowledge", **changes))
    assert response.status_code == 400
    _unchanged(notification)


@pytest.mark.parametrize(
    "body", [b"", b"payload=not-json", b"payload=1&payload=2", b"nopayload=1", b"payload=%ff"]
)
def test_wh08_malformed_signed_form_is_400(acked: Any, client: Any, body: bytes) -> None:
    assert post_press(client, body).status_code == 400


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_wh20_no_mutation_of_a_signed_press_is_accepted(
    acked: tuple[Notification, Any], client: Any, sandbox: Any, data: st.DataObject
) -> None:
    notification, message = acked
    body = press_body(sandbox, message, "acknowledge")
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(body, stamp),
    }
    what = data.draw(st.sampled_from(["body", "timestamp", "signature", "drop"]))
    if what == "body":
        index = data.draw(st.integers(0, len(body) - 1))
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
        body = body[:index] + bytes([byte]) + body[index + 1 :]
    elif what == "timestamp":
        headers["X-Slack-Request-Timestamp"] = data.draw(
            st.text(max_size=20).filter(lambda t: t.strip() != str(stamp))
        )
    elif what == "signature":
        signature = headers["X-Slack-Signature"]
        index = data.draw(st.integers(0, len(signature) - 1))
        char = data.draw(
            st.sampled_from("0123456789abcdefv=").filter(lambda c: c != signature[index])
        )
        headers["X-Slack-Signature"] = signature[:index] + char + signature[index + 1 :]
    else:
        del headers[data.draw(st.sampled_from(["X-Slack-Request-Timestamp", "X-Slack-Signature"]))]
    try:
        response = client.post("/slack/interactions", data=body, headers=headers)
    except ValueError:
        return  # the test client refuses a header value (e.g. a newline): never sent
    assert response.status_code == 401
    _unchanged(notification)


# --- "this is me" / "not me" from the first DM of an automatic link -------------------------------


def first_dm(sandbox: RunningSandbox, member: Any) -> Any:
    """member01's first DM (the link notice), with its buttons."""
    dispatcher.run_due()
    workspace = sandbox.state.slack.workspaces[TEAM]
    slack_id = db.session.get(ChatAccount, link_of(member).chat_account_id).external_id
    with_buttons = [m for m in workspace.messages if buttons(m.blocks) and m.user_id == slack_id]
    assert with_buttons, [m.text for m in workspace.messages]
    return with_buttons[0]


def test_first_dm_of_an_automatic_link_offers_this_is_me(
    member: Any, slack: Integration, sandbox: RunningSandbox, client: Any, tenants: Any
) -> None:
    link = link_of(member)
    assert link is not None and link.method is LinkMethod.EMAIL and link.confirmed_at is None
    message = first_dm(sandbox, member)
    assert [b["action_id"] for b in buttons(message.blocks)] == ["confirm_link", "disown_link"]
    assert [b["text"]["text"] for b in buttons(message.blocks)] == [
        labels("confirm_link"),
        labels("disown_link"),
    ]
    # A later DM does not ask again.
    later = send(member, tenants["own"], ack=False, title="別件のお知らせ")
    assert buttons(slack_dm(sandbox, "別件のお知らせ").blocks) == []
    assert later.deliveries
    response = post_press(client, press_body(sandbox, message, "confirm_link"))
    assert response.status_code == 200
    db.session.refresh(link)
    assert link.confirmed_at is not None  # exactly what /me's "this is me" does
    assert buttons(message.blocks) == []  # the DM was replaced: nothing left to press


def test_not_me_from_slack_unlinks_like_me_does(
    member: Any, slack: Integration, sandbox: RunningSandbox, client: Any
) -> None:
    message = first_dm(sandbox, member)
    response = post_press(client, press_body(sandbox, message, "disown_link"))
    assert response.status_code == 200
    assert link_of(member) is None
    from portal.audit.models import AuditEvent

    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "link.disowned")
        )
        == 1
    )


# --- Chatwork-style page link (a provider without buttons) ---------------------------------------


@pytest.fixture
def page_token(acked: tuple[Notification, Any], member: Any, slack: Integration) -> str:
    """A page link for member01's notification, as a DM without buttons carries it."""
    notification, _message = acked
    account = db.session.get(ChatAccount, link_of(member).chat_account_id)
    token = dm.issue_page_token(notification, slack, account)
    db.session.commit()
    return token


def test_page_link_acknowledges_once_for_the_recipient(
    page_token: str, acked: Any, client: Any, member: Any, subscribed: Any
) -> None:
    notification, _message = acked
    as_member(client, member)
    page = client.get(f"/me/notifications/{page_token}")
    assert page.status_code == 200 and labels("acknowledge") in page.text
    done = client.post_form(f"/me/notifications/{page_token}", {"action": "acknowledge"})
    assert done.status_code == 302
    db.session.refresh(notification)
    assert notification.acknowledged_by_id == member.id and acknowledged_events() == 1
    used = client.get(f"/me/notifications/{page_token}")
    with force_locale("ja"):
        expected = gettext("This link was already used.")
    assert used.status_code == 410 and expected in used.text


def test_page_link_of_another_member_is_refused(
    page_token: str, acked: Any, client: Any, tenants: Any
) -> None:
    as_member(client, tenants["member"])
    assert client.get(f"/me/notifications/{page_token}").status_code == 403
    assert (
        client.post_form(f"/me/notifications/{page_token}", {"action": "acknowledge"}).status_code
        == 403
    )
    _unchanged(acked[0])


def test_page_link_replaced_expired_forged(
    page_token: str, acked: Any, client: Any, member: Any, slack: Integration
) -> None:
    notification, _message = acked
    as_member(client, member)
    account = db.session.get(ChatAccount, link_of(member).chat_account_id)
    newer = dm.issue_page_token(notification, slack, account)
    db.session.commit()
    assert client.get(f"/me/notifications/{page_token}").status_code == 410
    assert client.get(f"/me/notifications/{newer}").status_code == 200
    assert client.get("/me/notifications/forged").status_code == 404
    row = db.session.scalars(select(ActionToken).order_by(ActionToken.id.desc())).first()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/me/notifications/{newer}").status_code == 410
    _unchanged(notification)


def test_page_post_without_csrf_is_refused(
    page_token: str, acked: Any, client: Any, member: Any
) -> None:
    as_member(client, member)
    response = client.post(f"/me/notifications/{page_token}", data={"action": "acknowledge"})
    assert response.status_code in (400, 403)
    _unchanged(acked[0])


def test_delivery_log_shows_the_acknowledgement(
    acked: Any, client: Any, sandbox: Any, admin_client: Any
) -> None:
    _notification, message = acked
    assert post_press(client, press_body(sandbox, message, "acknowledge")).status_code == 200
    page = admin_client.get("/deliveries")
    assert "メンバー 一 さんが" in page.text or "Acknowledged by" in page.text


def test_api_takes_ack_requested_strictly(client: Any, tenants: Any, member: Any) -> None:
    from portal.notifications import api_keys

    key = api_keys.create(tenants["own"], name="t", actor=tenants["admin"])
    db.session.commit()
    headers = {"Authorization": f"Bearer {key[1] if isinstance(key, tuple) else key}"}
    payload = {"recipient_email": EMAIL, "title": "t", "body": "b"}
    bad = client.post(
        "/api/v1/notifications", json={**payload, "ack_requested": "yes"}, headers=headers
    )
    assert bad.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
    good = client.post(
        "/api/v1/notifications", json={**payload, "ack_requested": True}, headers=headers
    )
    assert good.status_code == 202
    assert good.json["ack_requested"] is True and good.json["acknowledged_at"] is None
    assert db.session.scalars(select(Delivery)).first() is not None
