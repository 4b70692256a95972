"""The 「Webhook」 settings pages and the webhook-endpoints API (issue 17 items 1 and 4): the
secret shown once, rotation with both signatures during the overlap, on/off, test events,
replay; bad URLs refused with a clear form error and nothing saved; hostile form input never a
5xx nor a half-applied change."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import DeliveryState
from portal.webhooks import endpoints, events, sender, signing
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.hostile.strategies import nasty_text

from .conftest import Receiver


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0


def test_adding_an_endpoint_shows_its_secret_once(
    client: Any, tenants: dict[str, Any], receiver: Receiver
) -> None:
    client.login(tenants["admin"])
    page = client.get("/settings/webhooks")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Webhook" in text and "受け取るイベント" in text
    answer = client.post_form(
        "/settings/webhooks",
        {"url": receiver.url, "event_types": ["link.created", "notification.delivered"]},
    )
    assert answer.status_code == 200
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", answer.get_data(as_text=True))
    assert secret, "the new secret is on the page that made it"
    row = db.session.scalar(select(WebhookEndpoint))
    assert row is not None and row.event_types == ["notification.delivered", "link.created"]
    assert row.signing_secrets(utcnow()) == [secret.group(0)]
    # Stored encrypted, and never shown again.
    stored = db.session.execute(db.text("SELECT secret FROM webhook_endpoints")).scalar()
    assert secret.group(0) not in str(stored)
    for path in ("/settings/webhooks", f"/settings/webhooks/{row.id}"):
        assert secret.group(0) not in client.get(path).get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example/x", "https://"),
        ("http://169.254.169.254/latest/meta-data/", "公開アドレスではありません"),
        ("http://10.0.0.8/hook", "公開アドレスではありません"),
        ("http://[::ffff:192.168.1.1]/hook", "公開アドレスではありません"),
        ("https://" + "a" * 10_000 + ".example/", "2000"),
        ("https://name-that-does-not-resolve.invalid/hook", "解決できません"),
        ("", "URLを入力"),
    ],
)
def test_unsafe_urls_are_refused_with_a_form_error(
    client: Any, tenants: dict[str, Any], url: str, message: str
) -> None:
    client.login(tenants["admin"])
    answer = client.post_form("/settings/webhooks", {"url": url, "event_types": "link.created"})
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert message in text
    assert 'aria-invalid="true"' in text
    assert _count() == 0


def test_production_refuses_http_and_loopback(
    app: Any, client: Any, tenants: dict[str, Any]
) -> None:
    app.config.update(WEBHOOK_REQUIRE_HTTPS=True, WEBHOOK_ALLOW_LOOPBACK=False)
    client.login(tenants["admin"])
    for url, message in (
        ("http://hooks.example/x", "https://"),
        ("https://localhost/hook", "公開アドレスではありません"),
        ("https://127.0.0.1:8443/hook", "公開アドレスではありません"),
    ):
        answer = client.post_form("/settings/webhooks", {"url": url, "event_types": "link.created"})
        assert answer.status_code == 422 and message in answer.get_data(as_text=True)
    assert _count() == 0


def test_unknown_or_no_event_types_are_refused(
    client: Any, tenants: dict[str, Any], receiver: Receiver
) -> None:
    client.login(tenants["admin"])
    for types in ([], ["link.created", "link.exploded"]):
        answer = client.post_form("/settings/webhooks", {"url": receiver.url, "event_types": types})
        assert answer.status_code == 422
    assert _count() == 0


def test_rotation_signs_with_both_secrets_during_the_overlap(
    client: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    old = endpoint.secret_text
    client.login(tenants["admin"])
    answer = client.post_form(f"/settings/webhooks/{endpoint.id}/rotate")
    assert answer.status_code == 200
    new = re.search(r"whsec_[A-Za-z0-9+/=]+", answer.get_data(as_text=True))
    assert new and new.group(0) != old
    endpoints.send_test(db.session.get(WebhookEndpoint, endpoint.id), None)
    sender.run_due()
    got = receiver.read()["recent"][0]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    for secret in (old, new.group(0)):  # a receiver knowing either one verifies it
        Webhook(secret).verify(got["body"], got["headers"])
    # After the overlap only the new one signs.
    row = db.session.get(WebhookEndpoint, endpoint.id)
    assert row is not None
    later = utcnow() + timedelta(hours=25)
    assert row.signing_secrets(later) == [new.group(0)]


def test_turning_off_test_event_delete_and_replay_from_the_page(
    client: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    client.login(tenants["admin"])
    assert client.post_form(f"/settings/webhooks/{endpoint.id}/test").status_code == 302
    sender.run_due()
    page = client.get(f"/settings/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "webhook.test" in page and "200" in page
    assert receiver.read()["recent"][0]["type"] == "webhook.test"
    client.post_form(f"/settings/webhooks/{endpoint.id}/enabled", {"enabled": "off"})
    db.session.rollback()
    assert db.session.get(WebhookEndpoint, endpoint.id).enabled is False  # type: ignore[union-attr]
    # Replay a dead one.
    receiver.configure(status=500)
    event = events.emit_test(db.session.get(WebhookEndpoint, endpoint.id))  # type: ignore[arg-type]
    db.session.commit()
    row = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id))
    assert row is not None
    row.state = DeliveryState.DEAD
    db.session.commit()
    receiver.configure(status=200)
    answer = client.post_form(f"/settings/webhooks/{endpoint.id}/deliveries/{row.id}/replay")
    assert answer.status_code == 302
    sender.run_due()
    db.session.refresh(row)
    assert row.state is DeliveryState.SENT
    # Replaying a sent one is refused.
    again = client.post_form(f"/settings/webhooks/{endpoint.id}/deliveries/{row.id}/replay")
    assert again.status_code == 409
    assert client.post_form(f"/settings/webhooks/{endpoint.id}/delete").status_code == 302
    assert _count() == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_the_log_keeps_polling_while_a_worker_is_sending(
    client: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    """A page rendered between a worker's claim and the answer (no attempt written yet) must
    keep refreshing, or the admin who pressed 「テストイベントを送る」 never sees it arrive."""
    client.login(tenants["admin"])
    assert client.post_form(f"/settings/webhooks/{endpoint.id}/test").status_code == 302
    assert sender.claim(10) != []
    partial = client.get(f"/settings/webhooks/{endpoint.id}", headers={"HX-Request": "true"})
    log = partial.get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in log and "送信中" in log and "webhook.test" not in log
    row = db.session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    assert row is not None
    sender.deliver(row.id)
    log = client.get(f"/settings/webhooks/{endpoint.id}", headers={"HX-Request": "true"})
    text = log.get_data(as_text=True)
    assert "webhook.test" in text and 'hx-trigger="every 2s"' not in text


def test_another_organizations_endpoint_is_404(
    client: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint
) -> None:
    client.login(tenants["other_admin"])
    assert client.get(f"/settings/webhooks/{endpoint.id}").status_code == 404
    answer = client.post_form(f"/settings/webhooks/{endpoint.id}/rotate")
    assert answer.status_code == 404
    assert client.post_form(f"/settings/webhooks/{endpoint.id}/delete").status_code == 404
    assert _count() == 1


FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "url": st.one_of(nasty_text, st.just("http://127.0.0.1:9/x")),
        "description": nasty_text,
        "event_types": st.lists(st.one_of(st.sampled_from(list(events.TYPES)), nasty_text)),
        "include_content": st.one_of(st.just("on"), nasty_text),
        "enabled": nasty_text,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=FIELDS)
def test_hostile_form_input_is_never_a_5xx_nor_half_saved(
    client: Any, tenants: dict[str, Any], endpoint: WebhookEndpoint, data: dict[str, Any]
) -> None:
    if not getattr(client, "signed_in", False):  # the client lives across examples
        client.login(tenants["admin"])
        client.signed_in = True
    before = db.session.get(WebhookEndpoint, endpoint.id)
    assert before is not None
    snapshot = (before.url, before.description, list(before.event_types), before.include_content)
    for path in ("/settings/webhooks", f"/settings/webhooks/{endpoint.id}"):
        answer = client.post_form(path, data)
        assert answer.status_code < 500
        if answer.status_code >= 400:
            db.session.rollback()
            row = db.session.get(WebhookEndpoint, endpoint.id)
            assert row is not None
            assert (row.url, row.description, list(row.event_types), row.include_content) == (
                snapshot
            )
    answer = client.post_form(f"/settings/webhooks/{endpoint.id}/enabled", data)
    assert answer.status_code < 500


def test_api_creates_with_the_secret_once_and_refuses_bad_input(
    client: Any,
    api_key: str,
    tenants: dict[str, Any],
    receiver: Receiver,
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    made = client.post(
        "/api/v1/webhook-endpoints",
        json={"url": receiver.url, "event_types": ["link.created"]},
        headers=headers,
    )
    assert made.status_code == 201
    body = made.get_json()
    assert body["secret"].startswith(signing.PREFIX)
    shown = client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=headers).get_json()
    assert "secret" not in shown and shown["event_types"] == ["link.created"]
    for bad in (
        {"url": "http://169.254.169.254/", "event_types": ["link.created"]},
        {"url": receiver.url, "event_types": "link.created"},
        {"url": receiver.url, "event_types": ["link.created"], "include_content": "yes"},
        {"url": receiver.url, "event_types": ["link.created"], "extra": 1},
        {"url": 2**70, "event_types": ["link.created"]},
    ):
        answer = client.post("/api/v1/webhook-endpoints", json=bad, headers=headers)
        assert answer.status_code == 400, bad
    changed = client.patch(
        f"/api/v1/webhook-endpoints/{body['id']}", json={"enabled": False}, headers=headers
    )
    assert changed.status_code == 200 and changed.get_json()["enabled"] is False
    rotated = client.post(
        f"/api/v1/webhook-endpoints/{body['id']}/rotate-secret", headers=headers
    ).get_json()
    assert rotated["secret"] != body["secret"] and rotated["previous_secret_valid_until"]
    queued = client.post(f"/api/v1/webhook-endpoints/{body['id']}/test", headers=headers)
    assert queued.status_code == 202 and queued.get_json()["webhook_id"].startswith("msg_")
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    gone = client.delete(f"/api/v1/webhook-endpoints/{body['id']}", headers=headers)
    assert gone.status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{body['id']}", headers=headers).status_code == 404
