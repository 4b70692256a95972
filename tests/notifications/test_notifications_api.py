"""The notifications API: authentication, validation, idempotency, scoping, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.notifications import api_keys
from portal.notifications.models import ApiKey, Delivery, Notification
from portal.webhooks import events as webhook_events
from tests.notifications.helpers import post_notification


def test_post_queues_one_notification_with_an_email_delivery(
    client: Any, tenants: dict[str, Any], api_key: str
) -> None:
    response = post_notification(
        client, api_key, recipient_email="MEMBER@demo.example ", url="https://hr.example/1on1/5"
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["deliveries"] == [
        {
            "channel": "email",
            "state": "pending",
            "reason": "not_linked",
            "attempts": 0,
            "sent_at": None,
            "provider_message_id": None,
            "last_error": None,
        }
    ]
    fetched = client.get(
        f"/api/v1/notifications/{body['id']}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert fetched.status_code == 200
    assert fetched.get_json()["id"] == body["id"]


def test_by_user_id(client: Any, tenants: dict[str, Any], api_key: str) -> None:
    assert post_notification(client, api_key, user_id=tenants["member"].id).status_code == 202


def test_dl02_same_idempotency_key_twice_gives_one_notification(
    client: Any, tenants: dict[str, Any], api_key: str
) -> None:
    first = post_notification(
        client, api_key, recipient_email="member@demo.example", idempotency_key="goal-42"
    )
    second = post_notification(
        client, api_key, recipient_email="member@demo.example", idempotency_key="goal-42"
    )
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert db.session.scalar(select(db.func.count()).select_from(Notification)) == 1
    assert db.session.scalar(select(db.func.count()).select_from(Delivery)) == 1


def test_idempotency_keys_are_per_organization(
    client: Any, tenants: dict[str, Any], api_key: str
) -> None:
    _row, other_key = api_keys.create(tenants["other"], "other", actor=None)
    a = post_notification(
        client, api_key, recipient_email="member@demo.example", idempotency_key="same"
    )
    b = post_notification(
        client, other_key, recipient_email="member@sample.example", idempotency_key="same"
    )
    assert a.get_json()["id"] != b.get_json()["id"]


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "missing_api_key"),
        ({"Authorization": "Basic abc"}, 401, "missing_api_key"),
        ({"Authorization": "Bearer cc_live_nope"}, 401, "invalid_api_key"),
        ({"Authorization": "Bearer " + "x" * 5000}, 401, "invalid_api_key"),
    ],
)
def test_authentication_errors(
    client: Any, tenants: dict[str, Any], headers: dict[str, str], status: int, error: str
) -> None:
    response = client.post(
        "/api/v1/notifications", json={"title": "t", "body": "b"}, headers=headers
    )
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert response.get_json()["detail"]


def test_revoked_key_is_refused(client: Any, tenants: dict[str, Any], api_key: str) -> None:
    row = db.session.scalars(select(ApiKey)).one()
    api_keys.revoke(row, actor=tenants["admin"])
    response = post_notification(client, api_key, recipient_email="member@demo.example")
    assert response.status_code == 403
    assert response.get_json()["error"] == "revoked_api_key"


def test_bad_bodies(client: Any, tenants: dict[str, Any], api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    malformed = client.post(
        "/api/v1/notifications", data="{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.get_json()["error"] == "malformed_json"
    not_json = client.post("/api/v1/notifications", data="title=x", headers=auth)
    assert not_json.status_code == 415
    huge = client.post(
        "/api/v1/notifications",
        json={"title": "t", "body": "x" * 70_000, "recipient_email": "member@demo.example"},
        headers=auth,
    )
    assert huge.status_code == 413 and huge.get_json()["error"] == "body_too_large"
    for payload, error in [
        ({"title": "t", "body": "b"}, "invalid_field"),  # no recipient
        (
            {"title": "t", "body": "b", "recipient_email": "member@demo.example", "user_id": 1},
            "invalid_field",
        ),
        ({"body": "b", "recipient_email": "member@demo.example"}, "invalid_field"),
        ({"title": "  ", "body": "b", "recipient_email": "member@demo.example"}, "invalid_field"),
        (
            {"title": "t" * 301, "body": "b", "recipient_email": "member@demo.example"},
            "invalid_field",
        ),
        ({"title": 5, "body": "b", "recipient_email": "member@demo.example"}, "invalid_field"),
        ({"title": "t", "body": "b", "user_id": "7"}, "invalid_field"),
        ({"title": "t", "body": "b", "user_id": True}, "invalid_field"),
        (
            {
                "title": "t",
                "body": "b",
                "recipient_email": "member@demo.example",
                "url": "javascript:alert(1)",
            },
            "invalid_field",
        ),
        (
            {
                "title": "t",
                "body": "b",
                "recipient_email": "member@demo.example",
                "sensitive": "yes",
            },
            "invalid_field",
        ),
    ]:
        response = client.post("/api/v1/notifications", json=payload, headers=auth)
        assert response.status_code == 400, payload
        assert response.get_json()["error"] == error
    assert client.post("/api/v1/notifications", json=[1, 2], headers=auth).status_code == 400
    assert db.session.scalar(select(db.func.count()).select_from(Notification)) == 0


def test_unknown_or_foreign_recipient_is_422(
    client: Any, tenants: dict[str, Any], api_key: str
) -> None:
    for payload in (
        {"recipient_email": "nobody@demo.example"},
        {"recipient_email": "member@sample.example"},
        {"user_id": tenants["other_member"].id},
    ):
        response = post_notification(client, api_key, **payload)
        assert response.status_code == 422
        assert response.get_json()["error"] == "unknown_recipient"


def test_get_is_scoped_to_the_key_organization(
    client: Any, tenants: dict[str, Any], api_key: str
) -> None:
    _row, other_key = api_keys.create(tenants["other"], "other", actor=None)
    theirs = post_notification(
        client, other_key, recipient_email="member@sample.example"
    ).get_json()["id"]
    response = client.get(
        f"/api/v1/notifications/{theirs}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_rate_limit_answers_429_with_retry_after(
    client: Any, tenants: dict[str, Any], api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.api import views

    monkeypatch.setattr(views, "BURST", 3)
    monkeypatch.setattr(views, "RATE", 0.01)
    statuses = [
        post_notification(client, api_key, recipient_email="member@demo.example").status_code
        for _ in range(5)
    ]
    assert statuses[:3] == [202, 202, 202]
    limited = post_notification(client, api_key, recipient_email="member@demo.example")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["error"] == "rate_limited"


def test_openapi_description(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/notifications",
        "/notifications/{id}",
        "/categories",
        "/webhook-endpoints",
        "/webhook-endpoints/{id}",
        "/webhook-endpoints/{id}/rotate-secret",
        "/webhook-endpoints/{id}/test",
    }
    responses = spec["paths"]["/notifications"]["post"]["responses"]
    assert {"202", "400", "401", "403", "413", "415", "422", "429"} <= set(responses)
    # OpenAPI 3.1's webhooks section: every event type, its headers and its data fields.
    assert set(spec["webhooks"]) == set(webhook_events.TYPES)
    delivered = spec["webhooks"]["notification.delivered"]["post"]
    assert {p["name"] for p in delivered["parameters"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    body = delivered["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["type"] == {"const": "notification.delivered"}
    assert {"notification_id", "state", "sent_at"} <= set(body["properties"]["data"]["properties"])


def test_api_keys_page_shows_a_new_key_once(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    created = client.post_form("/settings/api-keys", {"name": "HR app"})
    assert created.status_code == 200
    key = created.text.split('<code id="new-api-key">')[1].split("<")[0]
    assert key.startswith("cc_live_")
    listing = client.get("/settings/api-keys").text
    assert key not in listing and key[:14] in listing
    row = db.session.scalars(select(ApiKey)).one()
    assert row.key_hash != key and key not in row.key_hash
    client.post_form(f"/settings/api-keys/{row.id}/revoke")
    db.session.refresh(row)
    assert row.revoked_at is not None


def test_cli_creates_a_key(app: Any, tenants: dict[str, Any]) -> None:
    result = app.test_cli_runner().invoke(args=["api-keys", "create", "demo"])
    assert result.exit_code == 0, result.output
    key = result.output.splitlines()[0]
    assert api_keys.authenticate(key) is not None
    assert app.test_cli_runner().invoke(args=["api-keys", "create", "nope"]).exit_code != 0
