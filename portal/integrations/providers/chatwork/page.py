"""What Chatwork's connected page shows besides the generic parts: the connected account with
its OAuth client form, the backlog of waiting messages, and the name suggestions."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import func, select

from ....accounts.tenancy import current_organization
from ....extensions import db
from ....notifications.models import Delivery, DeliveryState
from ... import directory
from ...models import Integration
from ...pipeline import SetupPipeline
from ...registry import providers
from . import name_matching
from .setup import kept_client, registration_values

#: Deliveries still to be sent (the pacing works through them).
WAITING = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING)


def connected_context(integration: Integration, send_rate: float) -> dict[str, Any]:
    """The template values of ``_connected.html`` and ``_matching.html``."""
    sync = directory.latest_sync(integration)
    last = SetupPipeline.last(
        providers.get_or_404("chatwork"), current_organization(), current_user
    )
    client = kept_client(integration, last.attempt() if last is not None else None)
    return {
        "report": None if sync is None or sync.active else name_matching.suggest(integration),
        "backlog": backlog(integration, send_rate),
        "client_form": client.form(client.saved_id),
        **registration_values(),
    }


def backlog(integration: Integration, send_rate: float) -> dict[str, Any]:
    """Chatwork deliveries waiting for this organization and how long the pacing needs."""
    waiting = (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.organization_id == integration.organization_id,
                Delivery.channel == "chatwork",
                Delivery.state.in_(WAITING),
            )
        )
        or 0
    )
    seconds = int(waiting / send_rate) if waiting else 0
    return {
        "waiting": waiting,
        "minutes": max(1, -(-seconds // 60)) if waiting else 0,
        "per_minute": round(send_rate * 60),
        "show": waiting > 10,
    }
