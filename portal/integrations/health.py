"""Integration health transitions, shared by the worker, webhooks and key rotation."""

from __future__ import annotations

import logging

from ..accounts.models import Organization
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..notifications import mail
from ..notifications.explain import explain_error
from ..tasks import task
from ..templating import provider_name
from ..webhooks import reports
from .models import AccountLink, Integration, IntegrationState

log = logging.getLogger(__name__)


def mark_needs_reconnect(integration: Integration, reason: str) -> None:
    """Stop using ``integration`` until an admin reconnects it (the caller commits).

    Chat deliveries for its organization fall back to e-mail while it is in this state. Call
    :func:`alert_admins` after committing to tell the organization's admins.
    """
    if integration.state is IntegrationState.NEEDS_RECONNECT:
        return
    before = integration.state.value
    integration.state = IntegrationState.NEEDS_RECONNECT
    integration.last_error = reason[:500]
    integration.last_error_at = utcnow()
    audit.record(
        "integration.needs_reconnect",
        organization=db.session.get(Organization, integration.organization_id),
        target=("integration", integration.id, integration.provider),
        before={"state": before},
        after={"state": integration.state.value, "reason": reason},
    )
    reports.integration_event("integration.needs_reconnect", integration, reason[:200])


def flag_link(link: AccountLink, reason: str) -> None:
    """The provider says this chat account is gone or blocks us (the caller commits)."""
    link.flagged_reason = reason[:200]
    audit.record(
        "link.flagged",
        organization=db.session.get(Organization, link.organization_id),
        target=("link", link.id, None),
        after={"reason": reason},
    )


def alert_admins(integration_id: int) -> None:
    """E-mail every admin of the integration's organization, in the background."""
    try:
        _send_admin_alerts(integration_id)
    except Exception:  # the banner on 外部ツールの連携 still tells them; never break the caller
        log.exception("could not queue the admin alert for integration %s", integration_id)


@task()
def _send_admin_alerts(integration_id: int) -> None:
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        return
    organization = db.session.get(Organization, integration.organization_id)
    link = mail.external_url("integrations.index")
    provider = provider_name(integration.provider)
    mail.email_admins(
        integration.organization_id,
        "admin_alert",
        lambda _admin: {
            "provider": provider,
            "organization": organization,
            "reason": explain_error(integration.provider, integration.last_error),
            "url": link,
        },
    )
