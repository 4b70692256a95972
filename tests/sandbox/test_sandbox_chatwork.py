"""Chatwork stand-in: registration page, requests-oauthlib code flow with PKCE, API v2."""

from __future__ import annotations

import re
import time

import pytest
import requests
from requests_oauthlib import OAuth2Session

from sandbox.testing import RunningSandbox
from tests.sandbox.flows import CHATWORK_REDIRECT, CHATWORK_SCOPES, chatwork_consent, query_of

LOGIN_PATH = "/chatwork/www/packages/oauth2/login.php"
REGISTRATION = "/chatwork/www/service/packages/chatwork/subpackages/oauth/client_create.php"


def register_on_page(sandbox: RunningSandbox) -> tuple[str, str]:
    """Fill in the registration page like an admin following the seed's step 2."""
    form = {
        "name": "Wistant",
        "client_type": "confidential",
        "redirect_uri": [CHATWORK_REDIRECT, ""],
        "scope": CHATWORK_SCOPES,
    }
    page = requests.post(sandbox.http_url + REGISTRATION, data=form, timeout=10)
    assert page.status_code == 200
    client_id = re.search(r'id="client-id">([^<]+)<', page.text)
    secret = re.search(r'id="client-secret">([^<]+)<', page.text)
    assert client_id and secret, page.text
    return client_id.group(1), secret.group(1)


def connect(sandbox: RunningSandbox, account: str = "") -> tuple[OAuth2Session, dict]:
    """Register, consent and fetch a token with requests-oauthlib (PKCE S256, HTTP Basic)."""
    client_id, secret = register_on_page(sandbox)
    session = OAuth2Session(
        client_id, redirect_uri=CHATWORK_REDIRECT, scope=CHATWORK_SCOPES, pkce="S256"
    )
    # oauthlib refuses a non-https authorization URL, so the consent page is opened through the
    # HTTPS listener here (both listeners serve the same paths).
    url, state = session.authorization_url(sandbox.https_url + LOGIN_PATH)
    assert "code_challenge_method=S256" in url
    callback = chatwork_consent(sandbox, url, account)
    assert callback["state"] == state
    token = session.fetch_token(
        sandbox.https_url + "/chatwork/oauth/token",
        code=callback["code"],
        client_secret=secret,
        verify=sandbox.ca_bundle,
    )
    return session, token


def api(sandbox: RunningSandbox, path: str) -> str:
    """Absolute API v2 URL."""
    return f"{sandbox.https_url}/chatwork/api/v2{path}"


def test_registration_rejects_http_outside_loopback(sandbox: RunningSandbox) -> None:
    form = {
        "name": "Wistant",
        "client_type": "confidential",
        "redirect_uri": ["http://portal.example/cb"],
        "scope": CHATWORK_SCOPES,
    }
    page = requests.post(sandbox.http_url + REGISTRATION, data=form, timeout=10)
    assert "https のURIのみ" in page.text
    assert 'id="client-id"' not in page.text


def test_code_flow_with_pkce_and_api(sandbox: RunningSandbox) -> None:
    session, token = connect(sandbox)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] in ("1800", 1800)  # oauthlib may convert the string
    assert token["refresh_token"]
    me = session.get(api(sandbox, "/me"), verify=sandbox.ca_bundle)
    assert me.json()["name"] == "Wistant通知用"
    contacts = session.get(api(sandbox, "/contacts"), verify=sandbox.ca_bundle)
    assert contacts.headers["x-ratelimit-limit"] == "300"
    listed = contacts.json()
    names = {c["name"] for c in listed}
    assert "外部 パートナー" in names
    assert len(listed) == 37  # member01-36 and the partner
    assert all("mail" not in c for c in listed)
    assert any("\u3000" in n for n in names) and any(n.isascii() for n in names)
    room = listed[0]["room_id"]
    sent = session.post(
        api(sandbox, f"/rooms/{room}/messages"),
        data={"body": "[info]1on1のお知らせ[/info]"},
        verify=sandbox.ca_bundle,
    )
    assert sent.status_code == 200
    assert isinstance(sent.json()["message_id"], str)
    received = sandbox.control(
        "GET", f"/_control/messages?provider=chatwork&user={listed[0]['account_id']}"
    )
    assert [m["body"] for m in received] == ["[info]1on1のお知らせ[/info]"]


def test_body_only_counts_in_form(sandbox: RunningSandbox) -> None:
    session, _ = connect(sandbox)
    room = session.get(api(sandbox, "/contacts"), verify=sandbox.ca_bundle).json()[0]["room_id"]
    answer = session.post(
        api(sandbox, f"/rooms/{room}/messages?body=hello"), verify=sandbox.ca_bundle
    )
    assert answer.status_code == 400
    assert answer.json() == {"errors": ["Parameter 'body' is required"]}


def test_pending_contact_has_no_room_until_accepted(sandbox: RunningSandbox) -> None:
    session, _ = connect(sandbox)
    before = {
        c["account_id"]
        for c in session.get(api(sandbox, "/contacts"), verify=sandbox.ca_bundle).json()
    }
    accepted = sandbox.control(
        "POST", "/_control/chatwork/accept-contact", {"account": "member37@demo.example"}
    )
    assert accepted["account_id"] not in before
    after = session.get(api(sandbox, "/contacts"), verify=sandbox.ca_bundle).json()
    assert accepted["room_id"] in {c["room_id"] for c in after}


def test_personal_account_can_authorize(sandbox: RunningSandbox) -> None:
    directory = sandbox.control("GET", "/_control/directory/chatwork")["accounts"]
    admin = next(a for a in directory if a["mail"] == "admin@demo.example")
    session, _ = connect(sandbox, str(admin["account_id"]))
    assert (
        session.get(api(sandbox, "/me"), verify=sandbox.ca_bundle).json()["mail"]
        == "admin@demo.example"
    )


def test_expired_token_and_refresh(sandbox: RunningSandbox) -> None:
    sandbox.configure(chatwork_access_ttl=1)
    session, token = connect(sandbox)
    time.sleep(1.1)
    # Plain requests: OAuth2Session would refuse to send a token it knows has expired.
    expired = requests.get(
        api(sandbox, "/me"),
        headers={"Authorization": f"Bearer {token['access_token']}"},
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    sandbox.configure(chatwork_access_ttl=1800)
    client_id = session.client_id
    secret = sandbox.state.chatwork.clients[client_id].client_secret
    refreshed = session.refresh_token(
        sandbox.https_url + "/chatwork/oauth/token",
        refresh_token=token["refresh_token"],
        auth=(client_id, secret),
        verify=sandbox.ca_bundle,
    )
    assert refreshed["access_token"] != token["access_token"]
    assert session.get(api(sandbox, "/me"), verify=sandbox.ca_bundle).status_code == 200


def test_rate_limit_headers_and_429(sandbox: RunningSandbox) -> None:
    session, _ = connect(sandbox)
    sandbox.configure(rate_limit_overrides={"chatwork:api": [[3, 300]]})
    remaining = [
        session.get(api(sandbox, "/me"), verify=sandbox.ca_bundle).headers["x-ratelimit-remaining"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    limited = session.get(api(sandbox, "/me"), verify=sandbox.ca_bundle)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) > time.time()


def test_code_verifier_is_checked(sandbox: RunningSandbox) -> None:
    client_id, secret = register_on_page(sandbox)
    session = OAuth2Session(
        client_id, redirect_uri=CHATWORK_REDIRECT, scope=CHATWORK_SCOPES, pkce="S256"
    )
    url, _ = session.authorization_url(sandbox.https_url + LOGIN_PATH)
    code = chatwork_consent(sandbox, url)["code"]
    answer = requests.post(
        sandbox.https_url + "/chatwork/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CHATWORK_REDIRECT,
            "code_verifier": "x" * 43,
        },
        auth=(client_id, secret),
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant" and answer.json()["error_uri"] is None


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"scope": "rooms.all:read_write"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_consent_errors_redirect(sandbox: RunningSandbox, params: dict, error: str) -> None:
    client = sandbox.control(
        "POST", "/_control/chatwork/clients", {"redirect_uris": [CHATWORK_REDIRECT]}
    )
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "scope": "users.profile.me:read",
        "state": "s",
        **params,
    }
    answer = requests.get(
        sandbox.http_url + LOGIN_PATH, params=query, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302
    assert query_of(answer.headers["Location"])["error"] == error


def test_unknown_client_gets_error_page(sandbox: RunningSandbox) -> None:
    answer = requests.get(
        sandbox.http_url + LOGIN_PATH,
        params={"response_type": "code", "client_id": "nope", "scope": "users.profile.me:read"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    assert "不正なクライアントID" in answer.text
