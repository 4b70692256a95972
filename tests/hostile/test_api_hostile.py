"""POST /api/v1/notifications under hostile input (issue 12, classes 1, 2, 4 and 5): every
answer is a 4xx with the JSON error body or a 202, never a 5xx, and what is accepted can be
delivered (titles are one line; bodies have no control characters but newline and tab)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.notifications import dispatcher
from portal.notifications.models import Delivery, DeliveryState, Notification
from portal.text import BadText, multiline, one_line
from tests.hostile.strategies import (
    NASTY_CHARS,
    bombs,
    dumps,
    huge_ints,
    json_values,
    nasty_text,
    nesting_bomb,
)
from tests.notifications.helpers import post_notification

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FIELDS = ["title", "body", "url", "user_id", "recipient_email", "idempotency_key", "sensitive", "x"]


def raw_post(client: Any, key: str, body: bytes, **headers: str) -> Any:
    return client.post(
        "/api/v1/notifications",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )


def notifications() -> int:
    return db.session.scalar(select(func.count()).select_from(Notification)) or 0


def assert_json_error(response: Any, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body = response.get_json()
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"]


def test_nesting_bombs_under_the_size_limit_are_400(client: Any, api_key: str) -> None:
    for opener in "[{":
        response = raw_post(client, api_key, nesting_bomb(5_000, opener))
        assert_json_error(response, 400)
        assert response.get_json()["error"] == "malformed_json"
    assert notifications() == 0


def test_integers_past_64_bits_are_400_wherever_they_are(
    client: Any, api_key: str, tenants: dict[str, Any]
) -> None:
    for body in (
        {"user_id": 2**63, "title": "t", "body": "b"},
        {"user_id": 2**64 + 1, "title": "t", "body": "b"},
        {"recipient_email": tenants["member"].email, "title": "t", "body": "b", "x": -(2**70)},
    ):
        assert_json_error(raw_post(client, api_key, json.dumps(body).encode()), 400)
    # Within 64 bits but past the 32-bit id column (PostgreSQL): no such member, not a 500.
    for user_id in (2**31 - 1, 2**31, 2**63 - 1):
        body = {"user_id": user_id, "title": "t", "body": "b"}
        assert_json_error(raw_post(client, api_key, json.dumps(body).encode()), 422)
    assert notifications() == 0


def test_titles_are_one_line(client: Any, api_key: str, tenants: dict[str, Any]) -> None:
    email = tenants["member"].email
    for title in ("a\nb", "a\rb", "a\u2028b", "a\u2029b", "a\x85b", "a\tb", "a\x00b", "\u202eab"):
        response = post_notification(client, api_key, recipient_email=email, title=title)
        assert_json_error(response, 400)
        assert "title" in response.get_json()["detail"]
    assert notifications() == 0


def test_bodies_keep_newlines_and_tabs_and_normalise_line_endings(
    client: Any, api_key: str, tenants: dict[str, Any]
) -> None:
    email = tenants["member"].email
    for bad in ("a\x00b", "a\x1bb", "a\u2028b", "\ud800", "a\x7fb"):
        assert_json_error(post_notification(client, api_key, recipient_email=email, body=bad), 400)
    response = post_notification(
        client, api_key, recipient_email=email, body="一行目\r\n二行目\r三行目\n\tインデント"
    )
    assert response.status_code == 202
    stored = db.session.get(Notification, response.get_json()["id"])
    assert stored is not None and stored.body == "一行目\n二行目\n三行目\n\tインデント"


def test_urls_keys_and_addresses_are_one_line(
    client: Any, api_key: str, tenants: dict[str, Any]
) -> None:
    email = tenants["member"].email
    for payload in (
        {"url": "https://a.example/\nSet-Cookie: x"},
        {"url": "https://[::1/"},
        {"url": "javascript:alert(1)"},
        {"url": "https:///no-host"},
        {"idempotency_key": "k\x00"},
    ):
        response = post_notification(client, api_key, recipient_email=email, **payload)
        assert_json_error(response, 400)
    # Surrounding white space is trimmed, as for every field; inside the value it is refused.
    header_injection = email + "\nBcc: all@demo.example"
    assert_json_error(post_notification(client, api_key, recipient_email=header_injection), 400)
    assert notifications() == 0


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(payload=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=7))
def test_any_json_object_is_a_clean_answer(client: Any, api_key: str, payload: Any) -> None:
    response = raw_post(client, api_key, dumps(payload))
    if response.status_code == 202:
        return
    assert_json_error(response)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(title=nasty_text, body=nasty_text)
def test_whatever_is_accepted_can_be_delivered(
    client: Any, api_key: str, tenants: dict[str, Any], title: str, body: str
) -> None:
    """The accepted text passes the same checks the API applies, and the e-mail builds."""
    response = raw_post(
        client,
        api_key,
        dumps({"recipient_email": tenants["member"].email, "title": title, "body": body}),
    )
    if response.status_code != 202:
        assert_json_error(response, 400)
        return
    stored = db.session.get(Notification, response.get_json()["id"])
    assert stored is not None
    one_line(stored.title)
    multiline(stored.body)
    assert not set(stored.title) & set(NASTY_CHARS) - {"\ufeff"}


def test_accepted_notifications_are_sent(
    client: Any, api_key: str, tenants: dict[str, Any], sandbox: Any
) -> None:
    response = post_notification(
        client,
        api_key,
        recipient_email=tenants["member"].email,
        title="絵文字 👨‍👩‍👧 ⚠️",
        body="a\n\tb",
    )
    assert response.status_code == 202
    dispatcher.run_due()
    row = db.session.scalar(select(Delivery))
    assert row is not None and row.state is DeliveryState.SENT


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(raw=bombs | st.binary(max_size=200) | huge_ints.map(lambda n: str(n).encode()))
def test_any_body_bytes_are_a_clean_answer(client: Any, api_key: str, raw: bytes) -> None:
    response = raw_post(client, api_key, raw)
    assert_json_error(response)


def test_text_rules() -> None:
    assert one_line("1on1のリマインド 👍🏽") == "1on1のリマインド 👍🏽"
    assert multiline("a\r\nb") == "a\nb"
    for bad in ("a\nb", "\x00", "\u2029"):
        with pytest.raises(BadText, match=r"U\+"):
            one_line(bad)
