"""Hostile input on the member flows of issue 15: the sign-in callbacks, "I sent the request"
and invitation links. Whatever a stranger puts in the query or the path — control
characters, huge values, a real state paired with junk — the answer is never a 5xx and no
link is made."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.integrations.models import AccountLink
from tests.hostile.strategies import nasty_text

PROVIDERS = st.sampled_from(["slack", "teams", "chatwork", "nope", "%00", "a" * 300])
QUERY = st.dictionaries(
    st.sampled_from(["state", "code", "error", "iss", "error_description", "x"]),
    nasty_text | st.text(min_size=200, max_size=3000),
    max_size=4,
)


def links() -> int:
    return db.session.scalar(select(func.count()).select_from(AccountLink)) or 0


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(provider=PROVIDERS, query=QUERY)
@example(provider="slack", query={"state": "\x00", "code": "\ud800"})
@example(provider="teams", query={"state": "x" * 199, "code": "c", "error": "access_denied"})
def test_sign_in_callbacks_never_fail(
    app: Flask, tenants: dict[str, Any], provider: str, query: dict[str, str]
) -> None:
    client = app.test_client()
    client.login(tenants["member"])  # type: ignore[attr-defined]
    before = links()
    encoded = urlencode(query, encoding="utf-8", errors="surrogatepass")
    response = client.get(f"/me/accounts/{quote(provider, safe='')}/callback?{encoded}")
    assert response.status_code < 500, response.status_code
    resumed = client.post(  # type: ignore[attr-defined]
        f"/me/accounts/{quote(provider, safe='')}/resume",
        data={"csrf_token": client.csrf_token()},  # type: ignore[attr-defined]
    )
    assert resumed.status_code < 500
    assert links() == before


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=nasty_text | st.text(min_size=100, max_size=2000))
@example(token="\x00")
@example(token="../../etc/passwd")
def test_invitation_links_never_fail(app: Flask, tenants: dict[str, Any], token: str) -> None:
    client = app.test_client()
    client.login(tenants["member"])  # type: ignore[attr-defined]
    path = "/me/invitations/" + quote(token.encode("utf-8", "surrogatepass"), safe="")
    assert client.get(path).status_code in (400, 404, 308)
    answer = client.post(path, data={"csrf_token": client.csrf_token()})  # type: ignore[attr-defined]
    assert answer.status_code in (400, 404, 308)
