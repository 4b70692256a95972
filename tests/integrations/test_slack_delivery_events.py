"""Slack DMs (Block Kit, error mapping, rotation), Events API (WH-01…WH-10), disconnect."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import ChatAccount, InboundEvent, Integration, IntegrationState
from portal.integrations.providers.base import (
    Message,
    ProviderAuthError,
    ProviderRateLimited,
    RecipientNotFound,
    TemporaryProviderError,
)
from portal.integrations.providers.slack import SlackProvider
from portal.integrations.providers.slack.client import render_message
from sandbox.slack.events import sign
from sandbox.testing import RunningSandbox
from tests.integrations.conftest import calls, stamp_outside_window

MESSAGE = Message(title="1on1のリマインド", body="明日 10:00 <から>", url="https://x.example/1")


def member_account(email: str = "member01@demo.example") -> ChatAccount:
    found = db.session.scalar(select(ChatAccount).where(ChatAccount.email == email))
    assert found is not None
    return found


def test_block_kit_has_title_body_button_and_fallback() -> None:
    payload = render_message(MESSAGE)
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "actions"]
    assert payload["blocks"][1]["text"]["text"] == "明日 10:00 &lt;から&gt;"
    assert payload["blocks"][2]["elements"][0]["url"] == "https://x.example/1"
    assert (
        payload["text"].startswith("1on1のリマインド") and "https://x.example/1" in payload["text"]
    )


def test_first_dm_goes_to_the_user_id_without_conversations_open(
    slack: Integration, sandbox: RunningSandbox
) -> None:
    client = SlackProvider().client(slack)
    target = member_account()
    first = client.send_direct_message(target, MESSAGE)
    assert first.account_extra is not None
    assert str(first.account_extra["dm_channel"]).startswith("D")  # the id Slack answered with
    target.extra = {**(target.extra or {}), **first.account_extra}  # as the dispatcher keeps it
    again = client.send_direct_message(target, MESSAGE)
    assert again.account_extra is None  # posted to the kept id: nothing new to keep
    assert first.provider_message_id
    assert calls(sandbox, "slack:conversations.open") == 0
    assert calls(sandbox, "slack:chat.postMessage") == 2
    received = sandbox.control(
        "GET", "/_control/messages?provider=slack&user=member01@demo.example"
    )
    assert len(received) == 2 and received[0]["text"].startswith("1on1のリマインド")


def test_a_stale_dm_id_is_replaced_by_posting_to_the_user(
    slack: Integration, sandbox: RunningSandbox
) -> None:
    client = SlackProvider().client(slack)
    target = member_account()
    target.extra = {**(target.extra or {}), "dm_channel": "D0STALE0000"}
    result = client.send_direct_message(target, MESSAGE)
    assert result.provider_message_id and result.account_extra is not None
    assert result.account_extra["dm_channel"] not in ("D0STALE0000", "")
    assert calls(sandbox, "slack:chat.postMessage") == 2  # the refused one, then the user id
    assert calls(sandbox, "slack:conversations.open") == 0


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 429}, ProviderRateLimited),
        ({"status": 503}, TemporaryProviderError),
        ({"status": 500}, TemporaryProviderError),
    ],
)
def test_dm_http_faults_are_mapped(
    slack: Integration, sandbox: RunningSandbox, fault: dict[str, int], expected: type
) -> None:
    sandbox.control("POST", "/_control/faults/fail", {"match": "slack:chat.postMessage", **fault})
    with pytest.raises(expected):
        SlackProvider().client(slack).send_direct_message(member_account(), MESSAGE)


def test_real_rate_limit_gives_retry_after(slack: Integration, sandbox: RunningSandbox) -> None:
    sandbox.configure(rate_limit_overrides={"slack:chat.postMessage": [[1, 60]]})
    client = SlackProvider().client(slack)
    client.send_direct_message(member_account(), MESSAGE)
    with pytest.raises(ProviderRateLimited) as raised:
        client.send_direct_message(member_account(), MESSAGE)
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1


def test_oa26_revoked_token_is_an_auth_error(slack: Integration, sandbox: RunningSandbox) -> None:
    token = slack.get_secrets()["access_token"]
    sandbox.control("POST", "/_control/faults/revoke-token", {"token": token})
    with pytest.raises(ProviderAuthError) as raised:
        SlackProvider().client(slack).send_direct_message(member_account(), MESSAGE)
    assert raised.value.code == "token_revoked"
    assert token not in str(raised.value)


def test_deactivated_member_is_recipient_not_found(
    slack: Integration, sandbox: RunningSandbox
) -> None:
    sandbox.control(
        "POST",
        "/_control/faults/deactivate-user",
        {"provider": "slack", "user": "member01@demo.example"},
    )
    with pytest.raises(RecipientNotFound) as raised:
        SlackProvider().client(slack).send_direct_message(member_account(), MESSAGE)
    assert raised.value.code == "user_disabled"


def test_unreachable_slack_is_temporary(app: Any, slack: Integration) -> None:
    app.config["SLACK_API_URL"] = "https://127.0.0.1:9/slack/api/"
    with pytest.raises(TemporaryProviderError):
        SlackProvider().client(slack).send_direct_message(member_account(), MESSAGE)


def test_token_rotation_refreshes_before_expiry(
    admin_client: Any, sandbox: RunningSandbox, app: Any
) -> None:
    from tests.integrations.slack_flow import install

    sandbox.configure(slack_token_rotation=True)
    assert install(admin_client, sandbox).status_code == 302
    integration = db.session.scalar(select(Integration))
    secrets = integration.get_secrets()
    assert secrets["refresh_token"].startswith("xoxe-1-") and integration.token_expires_at
    integration.token_expires_at = utcnow() + timedelta(minutes=30)  # inside the 2 h margin
    db.session.commit()
    version = integration.token_version
    SlackProvider().client(integration).send_direct_message(member_account(), MESSAGE)
    db.session.refresh(integration)
    assert integration.token_version == version + 1
    renewed = integration.get_secrets()
    assert renewed["refresh_token"] != secrets["refresh_token"]
    assert integration.token_expires_at > utcnow() + timedelta(hours=11)


def test_token_expired_answer_refreshes_and_retries_once(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    from tests.integrations.slack_flow import install

    sandbox.configure(slack_token_rotation=True, slack_access_ttl=1)
    assert install(admin_client, sandbox).status_code == 302
    integration = db.session.scalar(select(Integration))
    sandbox.configure(slack_access_ttl=43200)
    integration.token_expires_at = utcnow() + timedelta(days=1)  # we think it is still fresh
    db.session.commit()
    time.sleep(1.2)
    result = SlackProvider().client(integration).send_direct_message(member_account(), MESSAGE)
    assert result.provider_message_id


# --- Events API --------------------------------------------------------------------------------


def post_event(client: Any, body: bytes, timestamp: int | str | None = None, **headers: str) -> Any:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, int(stamp)) if stamp.isdigit() else "v0=00",
    }
    signed.update(headers)
    return client.post("/slack/events", data=body, headers=signed)


def envelope(
    event_type: str = "app_uninstalled", event_id: str = "Ev1", team: str = "T0DEMO0001"
) -> bytes:
    event: dict[str, Any] = {"type": event_type}
    if event_type == "tokens_revoked":
        event["tokens"] = {"oauth": [], "bot": ["UBOT"]}
    return json.dumps(
        {"type": "event_callback", "team_id": team, "event_id": event_id, "event": event}
    ).encode()


def test_wh01_valid_event_is_acknowledged(client: Any, slack: Integration) -> None:
    response = post_event(client, envelope("member_joined_channel"))
    assert response.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 1


@pytest.mark.parametrize("as_text", [False, True])
def test_wh02_altered_body(client: Any, slack: Integration, as_text: bool) -> None:
    body = envelope()
    stamp = int(time.time())
    signature = sign(body, stamp)
    altered = body.replace(b"Ev1", b"Ev2")
    response = client.post(
        "/slack/events",
        data=altered.decode() if as_text else altered,
        headers={"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature},
    )
    assert response.status_code == 401
    db.session.refresh(slack)
    assert slack.state is IntegrationState.CONNECTED


@pytest.mark.parametrize("skew", [-301, 301])
def test_wh03_timestamp_outside_the_window(client: Any, slack: Integration, skew: int) -> None:
    assert post_event(client, envelope(), stamp_outside_window(skew)).status_code == 401


def test_wh04_missing_headers_empty_body_odd_case(client: Any, slack: Integration) -> None:
    body = envelope("member_joined_channel")
    assert client.post("/slack/events", data=body).status_code == 401
    stamp = str(int(time.time()))
    assert (
        client.post(
            "/slack/events", data=body, headers={"X-Slack-Request-Timestamp": stamp}
        ).status_code
        == 401
    )
    assert client.post("/slack/events", data=b"").status_code == 401
    odd = client.post(
        "/slack/events",
        data=body,
        headers={"x-slack-request-TIMESTAMP": stamp, "X-SLACK-SIGNATURE": sign(body, int(stamp))},
    )
    assert odd.status_code == 200


@pytest.mark.parametrize("stamp", ["abc", "1e9", "9" * 40, "", "-5"])
def test_wh05_malformed_timestamp_is_401_not_500(
    client: Any, slack: Integration, stamp: str
) -> None:
    response = client.post(
        "/slack/events",
        data=envelope(),
        headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64},
    )
    assert response.status_code == 401


def test_wh06_signed_with_another_apps_secret(client: Any, slack: Integration) -> None:
    body = envelope()
    stamp = int(time.time())
    response = client.post(
        "/slack/events",
        data=body,
        headers={
            "X-Slack-Request-Timestamp": str(stamp),
            "X-Slack-Signature": sign(body, stamp, "another-apps-secret"),
        },
    )
    assert response.status_code == 401


def test_wh07_unknown_workspace_is_ignored(client: Any, slack: Integration) -> None:
    response = post_event(client, envelope(team="T0NOBODY00"))
    assert response.status_code == 200 and response.json["ignored"] == "unknown_team"
    db.session.refresh(slack)
    assert slack.state is IntegrationState.CONNECTED


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "event_callback"}'])
def test_wh08_bad_payload(client: Any, slack: Integration, body: bytes) -> None:
    assert post_event(client, body).status_code == 400


def test_wh09_oa27_uninstall_processed_once(client: Any, slack: Integration) -> None:
    for _ in range(3):
        assert (
            post_event(
                client, envelope(event_id="EvSAME"), **{"X-Slack-Retry-Num": "1"}
            ).status_code
            == 200
        )
    db.session.refresh(slack)
    assert slack.state is IntegrationState.NEEDS_RECONNECT and slack.secrets is None
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "integration.needs_reconnect")
        )
        == 1
    )


def test_oa27_tokens_revoked_for_our_bot(client: Any, slack: Integration) -> None:
    slack.config = {**slack.config, "bot_user_id": "UBOT"}
    db.session.commit()
    assert post_event(client, envelope("tokens_revoked", "EvT")).status_code == 200
    db.session.refresh(slack)
    assert slack.state is IntegrationState.NEEDS_RECONNECT and slack.secrets is None


def test_wh10_url_verification_only_when_signed(client: Any) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
    assert post_event(client, body).json == {"challenge": "abc123"}
    unsigned = client.post("/slack/events", data=body)
    assert unsigned.status_code == 401 and b"abc123" not in unsigned.data


def test_uninstall_from_slack_reaches_the_portal(
    live_server: str, admin_client: Any, sandbox: RunningSandbox
) -> None:
    from tests.integrations.slack_flow import install

    assert install(admin_client, sandbox).status_code == 302
    sandbox.control("POST", "/_control/slack/uninstall", {"team_id": "T0DEMO0001"})
    outbound = sandbox.control("GET", "/_control/outbound")
    assert [o["status"] for o in outbound if o["kind"].startswith("slack:")] == [200, 200]
    integration = db.session.scalar(select(Integration))
    db.session.refresh(integration)
    assert integration.state is IntegrationState.NEEDS_RECONNECT and integration.secrets is None
    page = admin_client.get("/settings/integrations").text
    assert "needs to be reconnected" in page or "再連携が必要" in page


def test_oa28_disconnect_revokes_and_deletes(
    admin_client: Any, slack: Integration, sandbox: RunningSandbox
) -> None:
    token = slack.get_secrets()["access_token"]
    response = admin_client.post_form("/settings/integrations/slack/disconnect")
    assert response.status_code == 302
    assert calls(sandbox, "slack:auth.revoke") == 1
    statuses = {t["status"] for t in sandbox.control("GET", "/_control/tokens?provider=slack")}
    assert "revoked" in statuses
    db.session.refresh(slack)
    assert slack.state is IntegrationState.DISCONNECTED and slack.secrets is None
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "integration.disconnected")
    ).one()
    assert event.data["revoked_at_provider"] is True and token not in str(event.data)


def test_oa28_disconnect_even_when_revocation_fails(
    admin_client: Any, slack: Integration, sandbox: RunningSandbox
) -> None:
    sandbox.control("POST", "/_control/faults/fail", {"match": "slack:auth.revoke", "status": 503})
    assert admin_client.post_form("/settings/integrations/slack/disconnect").status_code == 302
    db.session.refresh(slack)
    assert slack.secrets is None and slack.state is IntegrationState.DISCONNECTED
