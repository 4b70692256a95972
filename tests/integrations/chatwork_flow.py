"""Walking the Chatwork setup against the sandbox, as a browser would (shared by the tests)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from flask import current_app

import demodata
from portal.accounts.models import Organization, User
from sandbox.testing import RunningSandbox

CLIENT = "/settings/integrations/chatwork/client"
TOKEN_CALL = "chatwork:POST /oauth/token"


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def register_client(sandbox: RunningSandbox) -> dict[str, Any]:
    """What the admin does on Chatwork's OAuth client registration screen."""
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    uris = [f"{base}/chatwork/oauth/callback", f"{base}/me/accounts/chatwork/callback"]
    return sandbox.control("POST", "/_control/chatwork/clients", {"redirect_uris": uris})


def account_id(
    sandbox: RunningSandbox, name: str = "Wistant通知用", org: str = "デモ株式会社"
) -> int:
    """A sandbox Chatwork account by name (the notification account by default)."""
    return next(
        a.account_id
        for a in sandbox.state.chatwork.accounts.values()
        if a.name == name and a.organization_name == org
    )


def save_client(client: Any, client_id: str, secret: str = "") -> Any:
    """この内容で保存する."""
    return client.post_form(CLIENT, {"client_id": client_id, "client_secret": secret})


def consent(
    sandbox: RunningSandbox, url: str, decision: str = "allow", account: int | None = None
) -> str:
    """Answer the sandbox consent page; return the portal callback path with its query."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    answer = requests.post(
        page.url,
        data={"decision": decision, "account_id": str(account or account_id(sandbox))},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    parts = urlsplit(answer.headers["Location"])
    return f"{parts.path}?{parts.query}"


def connect(
    client: Any, sandbox: RunningSandbox, account: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """Register a client, save it, allow on Chatwork, come back; return (response, client)."""
    registered = register_client(sandbox)
    saved = save_client(client, registered["client_id"], registered["client_secret"])
    assert saved.status_code == 302, saved.text[:500]
    response = client.get(consent(sandbox, saved.headers["Location"], account=account))
    return response, registered


def demo_members(organization: Organization, make_user: Any, count: int = 40) -> list[User]:
    """The demo organization's members, named as the sandbox's contacts are (demodata)."""
    return [
        make_user(organization, email=p.email, name=p.name)
        for p in demodata.members(count, "demo.example")
    ]
