"""Browser-side steps of the consent pages, driven with plain requests (no JS needed)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.wrappers import Request

from sandbox.config import SLACK_CLIENT_ID
from sandbox.testing import RunningSandbox

PORTAL = "http://127.0.0.1:9"


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect target."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def slack_install(
    sandbox: RunningSandbox,
    scopes: str = "users:read,users:read.email,im:write,chat:write,incoming-webhook",
    team: str = "T0DEMO0001",
) -> str:
    """Walk the Slack consent page (pick #general) and return the authorization code."""
    params = {
        "client_id": SLACK_CLIENT_ID,
        "scope": scopes,
        "redirect_uri": f"{PORTAL}/slack/oauth/callback",
        "state": "st-1",
        "team": team,
    }
    url = f"{sandbox.http_url}/slack/oauth/v2/authorize"
    page = requests.get(url, params=params, timeout=10)
    assert page.status_code == 200
    channel = next(
        cid for cid, name in sandbox.state.slack.workspaces[team].channels if name == "general"
    )
    answer = requests.post(
        page.url, data={"decision": "allow", "channel": channel}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302
    query = query_of(answer.headers["Location"])
    assert query["state"] == "st-1"
    return query["code"]


class FakePortal:
    """A tiny WSGI app standing in for the portal: records what the sandbox posts to it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request = Request(environ)
        self.received.append((request.path, dict(request.headers), request.get_data()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


CHATWORK_SCOPES = [
    "offline_access",
    "users.profile.me:read",
    "rooms.messages:write",
    "contacts.all:read_write",
]
CHATWORK_REDIRECT = f"{PORTAL}/chatwork/oauth/callback"


def chatwork_consent(
    sandbox: RunningSandbox, authorization_url: str, account: str = ""
) -> dict[str, str]:
    """Open the Chatwork consent page, press 許可する, return the callback's query."""
    page = requests.get(authorization_url, timeout=10, verify=sandbox.ca_bundle)
    assert page.status_code == 200, page.text
    form = {"decision": "allow", **({"account_id": account} if account else {})}
    answer = requests.post(
        page.url, data=form, allow_redirects=False, timeout=10, verify=sandbox.ca_bundle
    )
    assert answer.status_code == 302
    return query_of(answer.headers["Location"])
