"""Access rules of the delivery log, test messages, API-key settings and the JSON API."""

from __future__ import annotations

from typing import Any

from portal.database import utcnow
from portal.extensions import db
from portal.notifications import api_keys
from portal.notifications.models import Delivery, DeliveryState, Notification
from tests.access import LOGIN, ORG_CHANGE, ORG_PAGE, Case, same, scoped


def failed_delivery(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    member = tenants["member" if tenant == "own" else "other_member"]
    notification = Notification(
        organization_id=member.organization_id, recipient_id=member.id, title="t", body="b"
    )
    notification.deliveries.append(
        Delivery(
            organization_id=member.organization_id,
            channel="email",
            state=DeliveryState.DEAD,
            next_attempt_at=utcnow(),
        )
    )
    db.session.add(notification)
    db.session.commit()
    return {"delivery": notification.deliveries[0].id, "notification": notification.id}


def api_key(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    row, _key = api_keys.create(tenants[tenant], "matrix", actor=None)
    return {"key": row.id}


MANAGE_ORG_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)
#: The JSON API authenticates with API keys only: a browser session is not enough.
API = same(anonymous=401, member=401, admin=401, support=401)

ROUTES: dict[str, list[Case]] = {
    "notifications.deliveries": [Case("GET", "/deliveries{org}", ORG_PAGE)],
    "notifications.replay": [
        Case("POST", "/deliveries/{delivery}/replay{org}", ORG_CHANGE, setup=failed_delivery)
    ],
    "notifications.test_message": [
        Case("POST", "/settings/members/{user}/test-message{org}", ORG_CHANGE)
    ],
    "notifications.api_key_list": [
        Case("GET", "/settings/api-keys{org}", MANAGE_ORG_PAGE),
        Case("POST", "/settings/api-keys{org}", MANAGE_ORG_PAGE, {"name": "from the matrix"}),
    ],
    "notifications.api_key_revoke": [
        Case("POST", "/settings/api-keys/{key}/revoke{org}", ORG_CHANGE, setup=api_key)
    ],
    "api.create_notification": [Case("POST", "/api/v1/notifications", API)],
    "api.get_notification": [
        Case("GET", "/api/v1/notifications/{notification}", API, setup=failed_delivery)
    ],
    "api.list_categories": [Case("GET", "/api/v1/categories", API)],
    "api.create_category": [Case("POST", "/api/v1/categories", API)],
    "api.openapi": [
        Case("GET", "/api/v1/openapi.json", same(anonymous=200, member=200, admin=200, support=200))
    ],
}
