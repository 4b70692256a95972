"""The worker delivers through the fourth provider: routing, the DM, a refusal's e-mail
fallback (issue 14, item 7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from portal.extensions import db
from portal.notifications import api_keys, dispatcher
from portal.notifications.models import Delivery, DeliveryState, Notification

from .flow import connect
from .service import SERVICE

REMINDER = "1on1のリマインド"


def deliveries_of(member: Any) -> Select[tuple[Delivery]]:
    """The deliveries of the reminder posted to ``member`` (not their link notices)."""
    return (
        select(Delivery)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Notification.recipient_id == member.id, Notification.title == REMINDER)
    )


def test_the_worker_delivers_through_the_fourth_provider(
    admin_client: Any, members: dict[str, Any], tenants: dict[str, Any]
) -> None:
    connect(admin_client)
    _row, key = api_keys.create(tenants["own"], "tests", actor=None)
    db.session.commit()
    for member in ("member01", "guest03"):
        response = admin_client.post(
            "/api/v1/notifications",
            json={
                "recipient_email": f"{member}@demo.example",
                "title": REMINDER,
                "body": "明日 10:00 から 1on1 です。",
                "idempotency_key": f"fourth-{member}",
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 202, response.text
        assert response.json["deliveries"][0]["channel"] == "fourth"
    dispatcher.run_due()
    dispatcher.run_due()  # the guest's e-mail fallback
    assert [user for user, text in SERVICE.inbox if "1on1" in text] == ["F001"]
    sent = db.session.scalars(deliveries_of(members["member01"])).all()
    assert [(d.channel, d.state) for d in sent] == [("fourth", DeliveryState.SENT)]
    guest = db.session.scalars(deliveries_of(members["guest03"])).all()
    assert {d.channel for d in guest} == {"fourth", "email"}
    refused = next(d for d in guest if d.channel == "fourth")
    assert refused.last_error_code == "guest_refuses_dm"
