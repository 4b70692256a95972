"""Access rules of the webhook settings and the webhook-endpoints API: admins of the
organization only (support staff may not see or change where events go, nor secrets)."""

from __future__ import annotations

from typing import Any

from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import DeliveryState
from portal.webhooks import endpoints, events
from portal.webhooks.models import WebhookDelivery
from tests.access import LOGIN, ORG_CHANGE, Case, same, scoped

URL = "http://127.0.0.1:9/hooks/matrix"


def endpoint(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    fields = endpoints.validate(URL, "matrix", list(events.TYPES), False)
    row, _secret = endpoints.create(tenants[tenant], None, fields)
    return {"endpoint": row.id}


def dead_delivery(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    ids = endpoint(tenants, tenant)
    event = events.emit(tenants[tenant].id, "integration.connected", {"integration_id": 1})
    db.session.commit()
    assert event is not None
    row = db.session.query(WebhookDelivery).filter_by(event_id=event.id).one()
    row.state = DeliveryState.DEAD
    row.updated_at = utcnow()
    db.session.commit()
    return {**ids, "delivery": row.id}


ADMIN_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)
API = same(anonymous=401, member=401, admin=401, support=401)
FORM = {"url": URL, "event_types": "link.created", "description": "matrix"}

ROUTES: dict[str, list[Case]] = {
    "webhooks.index": [
        Case("GET", "/settings/webhooks{org}", ADMIN_PAGE),
        Case("POST", "/settings/webhooks{org}", ADMIN_PAGE, FORM),
    ],
    "webhooks.detail": [
        Case("GET", "/settings/webhooks/{endpoint}{org}", ADMIN_PAGE, setup=endpoint)
    ],
    "webhooks.update": [
        Case("POST", "/settings/webhooks/{endpoint}{org}", ORG_CHANGE, FORM, setup=endpoint)
    ],
    "webhooks.rotate": [
        Case("POST", "/settings/webhooks/{endpoint}/rotate{org}", ADMIN_PAGE, setup=endpoint)
    ],
    "webhooks.set_enabled": [
        Case(
            "POST",
            "/settings/webhooks/{endpoint}/enabled{org}",
            ORG_CHANGE,
            {"enabled": "off"},
            setup=endpoint,
        )
    ],
    "webhooks.send_test": [
        Case("POST", "/settings/webhooks/{endpoint}/test{org}", ORG_CHANGE, setup=endpoint)
    ],
    "webhooks.delete": [
        Case("POST", "/settings/webhooks/{endpoint}/delete{org}", ORG_CHANGE, setup=endpoint)
    ],
    "webhooks.replay": [
        Case(
            "POST",
            "/settings/webhooks/{endpoint}/deliveries/{delivery}/replay{org}",
            ORG_CHANGE,
            setup=dead_delivery,
        )
    ],
    "api.list_webhook_endpoints": [Case("GET", "/api/v1/webhook-endpoints", API)],
    "api.create_webhook_endpoint": [Case("POST", "/api/v1/webhook-endpoints", API)],
    "api.get_webhook_endpoint": [
        Case("GET", "/api/v1/webhook-endpoints/{endpoint}", API, setup=endpoint)
    ],
    "api.update_webhook_endpoint": [
        Case("PATCH", "/api/v1/webhook-endpoints/{endpoint}", API, setup=endpoint)
    ],
    "api.delete_webhook_endpoint": [
        Case("DELETE", "/api/v1/webhook-endpoints/{endpoint}", API, setup=endpoint)
    ],
    "api.rotate_webhook_secret": [
        Case("POST", "/api/v1/webhook-endpoints/{endpoint}/rotate-secret", API, setup=endpoint)
    ],
    "api.test_webhook_endpoint": [
        Case("POST", "/api/v1/webhook-endpoints/{endpoint}/test", API, setup=endpoint)
    ],
}
