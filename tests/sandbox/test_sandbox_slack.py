"""Slack stand-in driven by the official slack_sdk client over HTTPS."""

from __future__ import annotations

import json
import time

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from sandbox.config import SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET
from sandbox.testing import RunningSandbox
from tests.sandbox.flows import PORTAL, FakePortal, query_of, slack_install


def client(sandbox: RunningSandbox, token: str | None = None) -> WebClient:
    """A WebClient pointed at the sandbox, trusting its CA."""
    return WebClient(
        token=token, base_url=f"{sandbox.https_url}/slack/api/", ssl=sandbox.ssl_context()
    )


def install(sandbox: RunningSandbox, scopes: str | None = None) -> dict:
    """Consent page + oauth.v2.access; returns the access response."""
    code = slack_install(sandbox, scopes) if scopes else slack_install(sandbox)
    response = client(sandbox).oauth_v2_access(
        client_id=SLACK_CLIENT_ID,
        client_secret=SLACK_CLIENT_SECRET,
        code=code,
        redirect_uri=f"{PORTAL}/slack/oauth/callback",
    )
    return response.data  # type: ignore[return-value]


def test_install_returns_bot_token_and_webhook(sandbox: RunningSandbox) -> None:
    data = install(sandbox)
    assert data["ok"] is True
    assert data["token_type"] == "bot"
    assert data["access_token"].startswith("xoxb-")
    assert data["team"] == {"id": "T0DEMO0001", "name": "デモ株式会社"}
    assert data["incoming_webhook"]["channel"] == "#general"
    assert data["incoming_webhook"]["channel_id"].startswith("C")
    assert "refresh_token" not in data
    assert data["is_enterprise_install"] is False


def test_code_is_single_use_and_redirect_must_match(sandbox: RunningSandbox) -> None:
    code = slack_install(sandbox)
    web = client(sandbox)
    with pytest.raises(SlackApiError) as wrong_uri:
        web.oauth_v2_access(
            client_id=SLACK_CLIENT_ID,
            client_secret=SLACK_CLIENT_SECRET,
            code=code,
            redirect_uri="http://127.0.0.1:9/other",
        )
    assert wrong_uri.value.response["error"] == "bad_redirect_uri"
    args = {
        "client_id": SLACK_CLIENT_ID,
        "code": code,
        "redirect_uri": f"{PORTAL}/slack/oauth/callback",
    }
    with pytest.raises(SlackApiError) as bad_secret:
        web.oauth_v2_access(client_secret="nope", **args)
    assert bad_secret.value.response["error"] == "bad_client_secret"
    web.oauth_v2_access(client_secret=SLACK_CLIENT_SECRET, **args)
    with pytest.raises(SlackApiError) as reused:
        web.oauth_v2_access(client_secret=SLACK_CLIENT_SECRET, **args)
    assert reused.value.response["error"] == "invalid_code"


def test_consent_page_cancel_and_unknown_client(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.http_url}/slack/oauth/v2/authorize"
    unknown = requests.get(url, params={"client_id": "123.456", "scope": "chat:write"}, timeout=10)
    assert unknown.status_code == 400
    assert "client_id" in unknown.text
    params = {
        "client_id": SLACK_CLIENT_ID,
        "scope": "chat:write",
        "state": "abc",
        "redirect_uri": f"{PORTAL}/slack/oauth/callback",
    }
    page = requests.get(url, params=params, timeout=10)
    assert "許可する" in page.text and "キャンセル" in page.text
    cancel = requests.post(page.url, data={"decision": "cancel"}, allow_redirects=False, timeout=10)
    assert query_of(cancel.headers["Location"]) == {"error": "access_denied", "state": "abc"}


def test_users_list_pages_and_email_needs_scope(sandbox: RunningSandbox) -> None:
    token = install(sandbox)["access_token"]
    web = client(sandbox, token)
    members = []
    for page in web.users_list(limit=10):
        assert len(page["members"]) <= 10
        members += page["members"]
    by_email = {m["profile"].get("email"): m for m in members}
    assert "member01@demo.example" in by_email
    assert by_email["member35@demo.example"]["deleted"] is True
    assert by_email["member40@demo.example"]["is_invited_user"] is True
    assert "member37@demo.example" not in by_email  # signs in with another address
    assert any(m["id"] == "USLACKBOT" for m in members)
    assert any(m["is_bot"] for m in members)
    assert web.users_lookupByEmail(email="Member02@demo.example")["user"]["real_name"]
    with pytest.raises(SlackApiError) as missing:
        web.users_lookupByEmail(email="nobody@demo.example")
    assert missing.value.response["error"] == "users_not_found"


def test_missing_scope_without_email_scope(sandbox: RunningSandbox) -> None:
    code = slack_install(sandbox, "users:read,chat:write,incoming-webhook", team="T0SAMPLE01")
    token = client(sandbox).oauth_v2_access(
        client_id=SLACK_CLIENT_ID,
        client_secret=SLACK_CLIENT_SECRET,
        code=code,
        redirect_uri=f"{PORTAL}/slack/oauth/callback",
    )["access_token"]
    web = client(sandbox, token)
    assert all("email" not in m["profile"] for m in web.users_list()["members"])
    with pytest.raises(SlackApiError) as error:
        web.users_lookupByEmail(email="member01@sample.example")
    assert error.value.response["error"] == "missing_scope"
    assert error.value.response["needed"] == "users:read.email"


def test_dm_roundtrip_is_recorded(sandbox: RunningSandbox) -> None:
    web = client(sandbox, install(sandbox)["access_token"])
    user = web.users_lookupByEmail(email="member03@demo.example")["user"]
    channel = web.conversations_open(users=user["id"])["channel"]["id"]
    assert channel.startswith("D")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*1on1* のリマインド"}}]
    sent = web.chat_postMessage(channel=channel, text="1on1 のリマインド", blocks=blocks)
    assert sent["channel"] == channel and sent["message"]["text"] == "1on1 のリマインド"
    received = sandbox.control(
        "GET", "/_control/messages?provider=slack&user=member03@demo.example"
    )
    assert [m["text"] for m in received] == ["1on1 のリマインド"]
    assert received[0]["blocks"] == blocks
    page = requests.get(sandbox.http_url + "/?tab=slack", timeout=10).text
    assert "*1on1* のリマインド" in page


def test_deleted_user_and_revoked_token(sandbox: RunningSandbox) -> None:
    token = install(sandbox)["access_token"]
    web = client(sandbox, token)
    deleted = web.users_lookupByEmail(email="member35@demo.example")["user"]["id"]
    with pytest.raises(SlackApiError) as disabled:
        web.conversations_open(users=deleted)
    assert disabled.value.response["error"] == "user_disabled"
    sandbox.control("POST", "/_control/faults/revoke-token", {"token": token})
    with pytest.raises(SlackApiError) as revoked:
        web.auth_test()
    assert revoked.value.response["error"] == "token_revoked"
    with pytest.raises(SlackApiError) as unknown:
        client(sandbox, "xoxb-0-0-unknown").auth_test()
    assert unknown.value.response["error"] == "invalid_auth"


def test_rate_limit_429_and_retry_handler(sandbox: RunningSandbox) -> None:
    token = install(sandbox)["access_token"]
    sandbox.configure(rate_limit_overrides={"slack:users.list": [[2, 1]]})
    web = client(sandbox, token)
    web.users_list(limit=5)
    web.users_list(limit=5)
    with pytest.raises(SlackApiError) as limited:
        web.users_list(limit=5)
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited"
    assert limited.value.response.headers["Retry-After"] == "1"
    web.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    started = time.monotonic()
    assert web.users_list(limit=5)["ok"] is True
    assert time.monotonic() - started >= 0.5  # it waited for Retry-After
    counts = sandbox.control("GET", "/_control/requests")["counts"]
    assert counts["slack:users.list"] >= 4


def test_token_rotation_refresh(sandbox: RunningSandbox) -> None:
    sandbox.configure(slack_token_rotation=True)
    data = install(sandbox)
    assert data["access_token"].startswith("xoxe.xoxb-")
    assert data["refresh_token"].startswith("xoxe-1-")
    assert 43000 < data["expires_in"] <= 43200
    web = client(sandbox)
    refreshed = web.oauth_v2_access(
        client_id=SLACK_CLIENT_ID,
        client_secret=SLACK_CLIENT_SECRET,
        grant_type="refresh_token",
        refresh_token=data["refresh_token"],
    )
    assert refreshed["refresh_token"] != data["refresh_token"]
    with pytest.raises(SlackApiError) as reused:
        web.oauth_v2_access(
            client_id=SLACK_CLIENT_ID,
            client_secret=SLACK_CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=data["refresh_token"],
        )
    assert reused.value.response["error"] == "invalid_refresh_token"
    sandbox.configure(slack_access_ttl=0)
    expiring = client(sandbox).oauth_v2_access(
        client_id=SLACK_CLIENT_ID,
        client_secret=SLACK_CLIENT_SECRET,
        grant_type="refresh_token",
        refresh_token=refreshed["refresh_token"],
    )
    with pytest.raises(SlackApiError) as expired:
        client(sandbox, expiring["access_token"]).auth_test()
    assert expired.value.response["error"] == "token_expired"


def test_uninstall_sends_signed_events(sandbox: RunningSandbox, fake_portal: FakePortal) -> None:
    token = install(sandbox)["access_token"]
    result = sandbox.control("POST", "/_control/slack/uninstall", {"team_id": "T0DEMO0001"})
    assert result["portal"] == [200, 200]
    verifier = SignatureVerifier(SLACK_SIGNING_SECRET)
    kinds = []
    for path, headers, body in fake_portal.received:
        assert path == "/slack/events"
        assert verifier.is_valid(
            body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
        )
        payload = json.loads(body)
        assert payload["type"] == "event_callback" and payload["team_id"] == "T0DEMO0001"
        kinds.append(payload["event"]["type"])
    assert kinds == ["app_uninstalled", "tokens_revoked"]
    with pytest.raises(SlackApiError) as revoked:
        client(sandbox, token).auth_test()
    assert revoked.value.response["error"] == "token_revoked"


def test_injected_failures(sandbox: RunningSandbox) -> None:
    web = client(sandbox, install(sandbox)["access_token"])
    sandbox.control(
        "POST", "/_control/faults/fail", {"match": "slack:auth.test", "status": 503, "count": 1}
    )
    with pytest.raises(SlackApiError) as failed:
        web.auth_test()
    assert failed.value.response.status_code == 503
    assert web.auth_test()["ok"] is True
