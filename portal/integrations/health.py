"""Integration health transitions, shared by the worker, webhooks and key rotation."""

from __future__ import annotations

from ..audit import service as audit
from ..database import utcnow
from .models import Integration, IntegrationState


def mark_needs_reconnect(integration: Integration, reason: str) -> None:
    """Stop using ``integration`` until an admin reconnects it (the caller commits).

    Chat deliveries for its organization fall back to e-mail while it is in this state.
    """
    if integration.state is IntegrationState.NEEDS_RECONNECT:
        return
    before = integration.state.value
    integration.state = IntegrationState.NEEDS_RECONNECT
    integration.last_error = reason[:500]
    integration.last_error_at = utcnow()
    from ..accounts.models import Organization
    from ..extensions import db

    audit.record(
        "integration.needs_reconnect",
        organization=db.session.get(Organization, integration.organization_id),
        target=("integration", integration.id, integration.provider),
        before={"state": before},
        after={"state": integration.state.value, "reason": reason},
    )
