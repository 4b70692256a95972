"""Integers from URLs, queries and forms are range-checked where they enter (issue 12, class
2): past 64 bits, non-ASCII digits or thousands of digits are a 404 or 400, never a 5xx."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portal.converters import ID_MAX, parse_id
from portal.extensions import db
from portal.integrations.models import Integration, IntegrationState

# Ids are 32-bit on PostgreSQL: 2^31 is the first that the database would refuse.
BIG = [str(2**31), str(2**63), str(2**64), "9" * 25, "9" * 5000, "0", "00000000000000000000001"]


@pytest.mark.parametrize("number", BIG)
def test_api_notification_ids(client: Any, api_key: str, number: str) -> None:
    response = client.get(
        f"/api/v1/notifications/{number}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 404, response.text[:200]
    assert response.get_json()["error"]


def signed_in(app: Flask, user: Any) -> Any:
    client = app.test_client()
    client.login(user)  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("number", BIG)
def test_admin_and_support_paths(app: Flask, tenants: dict[str, Any], number: str) -> None:
    support = signed_in(app, tenants["support"])
    assert support.get(f"/support/members/{number}?org=demo").status_code == 404
    client = signed_in(app, tenants["admin"])
    token = client.csrf_token()
    for path in (
        f"/settings/members/{number}/deactivate",
        f"/deliveries/{number}/replay",
        f"/settings/integrations/slack/members/{number}/link",
    ):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path


@pytest.mark.parametrize("value", [str(2**31), str(2**63), "²", "١٢", "9" * 5000, "-1", "1e3"])
def test_query_integers(app: Flask, tenants: dict[str, Any], value: str) -> None:
    client = signed_in(app, tenants["admin"])
    assert client.get(f"/settings/members?page={value}").status_code == 400
    assert client.get(f"/audit?before={value}").status_code == 400
    support = signed_in(app, tenants["support"])
    member = tenants["member"].id
    answer = support.get(f"/support/members/{member}?org=demo&notification={value}")
    assert answer.status_code == 404


def test_nul_in_a_query_or_form_is_400(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    assert client.get("/settings/members?q=%00").status_code == 400
    assert client.post("/login", data={"email": "a\x00b", "password": "x"}).status_code == 400


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
@example("0\x1f")  # str.strip() removes U+001F, int() does not: a 500 found by this test
@example(" 12\x1c")
def test_parse_id_accepts_exactly_the_ids_a_column_holds(raw: str) -> None:
    value = parse_id(raw)
    if value is not None:
        assert 1 <= value <= ID_MAX and raw.strip().isascii()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=25))
def test_any_member_id_is_a_clean_answer(app: Flask, tenants: dict[str, Any], raw: Any) -> None:
    support = signed_in(app, tenants["support"])
    response = support.get(f"/support/members/{quote(str(raw), safe='')}?org=demo")
    assert response.status_code in (200, 404), response.status_code


@pytest.mark.parametrize("value", ["²", "١", str(2**64), "9" * 5000, "-3", ""])
def test_form_integers(app: Flask, tenants: dict[str, Any], value: str) -> None:
    db.session.add(
        Integration(
            organization_id=tenants["own"].id,
            provider="slack",
            state=IntegrationState.CONNECTED,
            external_id="T0DEMO0001",
            display_name="デモ",
        )
    )
    db.session.commit()
    client = signed_in(app, tenants["admin"])
    member = tenants["member"].id
    response = client.post_form(
        f"/settings/integrations/slack/members/{member}/link", {"chat_account_id": value}
    )
    assert response.status_code in (200, 302, 422), response.status_code
    pairs = client.post_form(
        "/settings/integrations/chatwork/suggestions", {"pair": f"{value}:{value}"}
    )
    assert pairs.status_code < 500
