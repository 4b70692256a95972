"""Microsoft stand-in: admin consent, msal client credentials, Graph paging, Bot Framework."""

from __future__ import annotations

import json

import jwt
import msal
import pytest
import requests

from sandbox.config import DEMO_TENANT_ID, MS_BOT_APP_ID, MS_CLIENT_ID, MS_CLIENT_SECRET
from sandbox.testing import RunningSandbox
from tests.sandbox.flows import PORTAL, FakePortal, query_of

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
BOT_SCOPE = ["https://api.botframework.com/.default"]


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's `verify`, which is
    how msal applies its `verify=` argument; drop them so msal trusts the sandbox CA."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def msal_app(sandbox: RunningSandbox, tenant: str) -> msal.ConfidentialClientApplication:
    """msal pointed at the sandbox authority. `instance_discovery=False` is the one extra
    argument: without it msal asks login.microsoftonline.com whether the host is a known
    authority (`validate_authority=False` has the same effect)."""
    return msal.ConfidentialClientApplication(
        MS_CLIENT_ID,
        client_credential=MS_CLIENT_SECRET,
        authority=f"{sandbox.https_url}/microsoft/login/{tenant}",
        verify=sandbox.ca_bundle,
        instance_discovery=False,
    )


def consent_on_page(sandbox: RunningSandbox) -> dict[str, str]:
    """Admin consent through the `organizations` page, choosing the demo tenant."""
    params = {
        "client_id": MS_CLIENT_ID,
        "scope": GRAPH_SCOPE[0],
        "state": "s1",
        "redirect_uri": f"{PORTAL}/teams/oauth/callback",
    }
    url = f"{sandbox.http_url}/microsoft/login/organizations/v2.0/adminconsent"
    page = requests.get(url, params=params, timeout=10)
    assert "承諾" in page.text
    answer = requests.post(
        page.url,
        data={"decision": "allow", "tenant_choice": DEMO_TENANT_ID},
        allow_redirects=False,
        timeout=10,
    )
    return query_of(answer.headers["Location"])


def graph_token(sandbox: RunningSandbox) -> str:
    """A Graph token for the demo tenant (after consent)."""
    sandbox.control("POST", "/_control/microsoft/consent", {"tenant_id": DEMO_TENANT_ID})
    result = msal_app(sandbox, DEMO_TENANT_ID).acquire_token_for_client(scopes=GRAPH_SCOPE)
    return str(result["access_token"])


def test_admin_consent_then_msal_token(sandbox: RunningSandbox) -> None:
    refused = msal_app(sandbox, DEMO_TENANT_ID).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert refused["error"] == "unauthorized_client"
    assert 700016 in refused["error_codes"]
    callback = consent_on_page(sandbox)
    assert callback == {
        "tenant": DEMO_TENANT_ID,
        "admin_consent": "True",
        "scope": GRAPH_SCOPE[0],
        "state": "s1",
    }
    result = msal_app(sandbox, DEMO_TENANT_ID).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert result["token_type"] == "Bearer"
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["tid"] == DEMO_TENANT_ID and claims["appid"] == MS_CLIENT_ID
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["exp"] - claims["iat"] == 3599


def test_consent_cancel(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.http_url}/microsoft/login/{DEMO_TENANT_ID}/v2.0/adminconsent"
    params = {
        "client_id": MS_CLIENT_ID,
        "scope": GRAPH_SCOPE[0],
        "state": "s2",
        "redirect_uri": f"{PORTAL}/teams/oauth/callback",
    }
    answer = requests.post(
        url, params=params, data={"decision": "cancel"}, allow_redirects=False, timeout=10
    )
    query = query_of(answer.headers["Location"])
    assert query["error"] == "access_denied" and query["state"] == "s2"


def test_graph_users_paging(sandbox: RunningSandbox) -> None:
    headers = {"Authorization": f"Bearer {graph_token(sandbox)}"}
    select = "id,displayName,mail,userPrincipalName"
    url = f"{sandbox.https_url}/microsoft/graph/v1.0/users?$top=15&$select={select}"
    users, pages = [], 0
    while url:
        page = requests.get(url, headers=headers, verify=sandbox.ca_bundle, timeout=10).json()
        users += page["value"]
        pages += 1
        url = page.get("@odata.nextLink")
    assert pages == 3 and len(users) == 43
    assert set(users[0]) == {"id", "displayName", "mail", "userPrincipalName"}
    no_mail = [
        u for u in users if u["mail"] is None and u["userPrincipalName"].startswith("member")
    ]
    assert len(no_mail) == 3
    too_big = requests.get(
        f"{sandbox.https_url}/microsoft/graph/v1.0/users?$top=1000",
        headers=headers,
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert too_big.status_code == 400
    assert "between 1 and 999" in too_big.json()["error"]["message"]


def test_graph_429_and_bad_token(sandbox: RunningSandbox) -> None:
    headers = {"Authorization": f"Bearer {graph_token(sandbox)}"}
    sandbox.configure(rate_limit_overrides={"microsoft:graph": [[1, 30]]})
    url = f"{sandbox.https_url}/microsoft/graph/v1.0/users"
    assert (
        requests.get(url, headers=headers, verify=sandbox.ca_bundle, timeout=10).status_code == 200
    )
    limited = requests.get(url, headers=headers, verify=sandbox.ca_bundle, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "TooManyRequests"
    bad = requests.get(
        url, headers={"Authorization": "Bearer x.y.z"}, verify=sandbox.ca_bundle, timeout=10
    )
    assert bad.status_code == 401


def bot_token(sandbox: RunningSandbox) -> str:
    """A Bot Framework token via msal (multi-tenant: the botframework.com authority)."""
    result = msal_app(sandbox, "botframework.com").acquire_token_for_client(scopes=BOT_SCOPE)
    return str(result["access_token"])


def test_bot_install_activity_jwt_validates_with_jwks(
    sandbox: RunningSandbox, fake_portal: FakePortal
) -> None:
    result = sandbox.control("POST", "/_control/teams/install", {"user": "member04@demo.example"})
    assert result["portal"] == [200, 200]
    (_, headers1, body1), (_, _, body2) = fake_portal.received
    update, installation = json.loads(body1), json.loads(body2)
    assert update["type"] == "conversationUpdate" and installation["action"] == "add"
    assert update["recipient"] == {"id": f"28:{MS_BOT_APP_ID}", "name": "Wistant bot"}
    assert update["conversation"]["tenantId"] == DEMO_TENANT_ID
    metadata = requests.get(
        f"{sandbox.https_url}/microsoft/botframework/v1/.well-known/openidconfiguration",
        verify=sandbox.ca_bundle,
        timeout=10,
    ).json()
    jwks = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=sandbox.ssl_context())
    token = headers1["Authorization"].removeprefix("Bearer ")
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=MS_BOT_APP_ID,
        issuer="https://api.botframework.com",
    )
    assert claims["serviceurl"] == update["serviceUrl"]
    assert "msteams" in jwks.get_jwk_set().keys[0]._jwk_data["endorsements"]
    assert claims["exp"] - claims["nbf"] == 300


def test_bot_connector_send_and_blocked(sandbox: RunningSandbox, fake_portal: FakePortal) -> None:
    installed = sandbox.control(
        "POST", "/_control/teams/install", {"user": "member05@demo.example"}
    )
    user_id = installed["user_id"]
    service = f"{sandbox.https_url}/microsoft/botconnector"
    headers = {"Authorization": f"Bearer {bot_token(sandbox)}"}
    created = requests.post(
        f"{service}/v3/conversations",
        headers=headers,
        verify=sandbox.ca_bundle,
        timeout=10,
        json={
            "bot": {"id": f"28:{MS_BOT_APP_ID}"},
            "members": [{"id": user_id}],
            "channelData": {"tenant": {"id": DEMO_TENANT_ID}},
        },
    )
    assert created.status_code == 201
    conversation = created.json()["id"]
    assert conversation == installed["conversation_id"]
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "目標の更新"}]}
    sent = requests.post(
        f"{service}/v3/conversations/{conversation}/activities",
        headers=headers,
        json={
            "type": "message",
            "text": "こんにちは佐藤さん",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        },
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert sent.status_code == 201 and sent.json()["id"]
    received = sandbox.control(
        "GET", "/_control/messages?provider=microsoft&user=member05@demo.example"
    )
    assert received[0]["text"] == "こんにちは佐藤さん\n目標の更新"
    sandbox.control("POST", "/_control/teams/uninstall", {"user": "member05@demo.example"})
    blocked = requests.post(
        f"{service}/v3/conversations/{conversation}/activities",
        headers=headers,
        json={"type": "message", "text": "x"},
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert blocked.status_code == 403
    assert blocked.json()["error"]["subCode"] == "MessageWritesBlocked"
    unauthenticated = requests.post(
        f"{service}/v3/conversations/{conversation}/activities",
        json={"type": "message"},
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert unauthenticated.status_code == 401


def test_bot_connector_rate_limit(sandbox: RunningSandbox, fake_portal: FakePortal) -> None:
    installed = sandbox.control(
        "POST", "/_control/teams/install", {"user": "member06@demo.example"}
    )
    conversation = installed["conversation_id"]
    url = f"{sandbox.https_url}/microsoft/botconnector/v3/conversations/{conversation}/activities"
    headers = {"Authorization": f"Bearer {bot_token(sandbox)}"}
    statuses = [
        requests.post(
            url,
            headers=headers,
            json={"type": "message", "text": str(i)},
            verify=sandbox.ca_bundle,
            timeout=10,
        ).status_code
        for i in range(9)
    ]
    # 7 per second, 8 per 2 seconds per conversation: the 8th or 9th call is refused.
    assert statuses[:7] == [201] * 7
    assert 429 in statuses[7:]
