"""Connection life cycle: save a finished wizard, disconnect, react to the provider revoking us.

Each function owns its transaction and writes the audit log inside it. Secrets never reach the
audit log or a page: only ``Integration.set_secrets`` sees them.

Disconnect keeps the directory (ChatAccount) and the links (AccountLink) but deletes every
secret; deliveries only use a *connected* integration, so the kept links are dormant. When the
admin reconnects the **same** workspace they are live again at once; connecting a *different*
workspace drops them (each removal audited), since those accounts no longer exist for us.
"""

from __future__ import annotations

import logging

from flask_babel import gettext as _
from sqlalchemy import delete, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from ..webhooks import reports
from .health import alert_admins, mark_needs_reconnect
from .models import AccountLink, ChatAccount, Integration, IntegrationState, LinkBatch
from .providers.base import ChatProvider, ConnectionData, ProviderError
from .wizard import SetupError

log = logging.getLogger("portal.integrations")

LIVE_STATES = (IntegrationState.CONNECTED, IntegrationState.NEEDS_RECONNECT)


def find_integration(organization: Organization, provider_key: str) -> Integration | None:
    """The organization's integration with a provider, in whatever state."""
    return db.session.scalar(
        select(Integration).where(
            Integration.organization_id == organization.id, Integration.provider == provider_key
        )
    )


def save_connection(
    provider: ChatProvider, organization: Organization, actor: User, connection: ConnectionData
) -> Integration:
    """Store a finished wizard as the organization's integration (the caller commits).

    Refuses (``SetupError``) a workspace another organization has connected (OA-16): its
    tokens there stay untouched.
    """
    taken = db.session.scalar(
        select(Integration.id).where(
            Integration.provider == provider.key,
            Integration.external_id == connection.external_id,
            Integration.organization_id != organization.id,
            Integration.state.in_(LIVE_STATES),
        )
    )
    if taken is not None:
        raise SetupError(
            _(
                "This %(provider)s workspace is already connected to another organization.",
                provider=provider.name,
            )
        )
    integration = find_integration(organization, provider.key)
    before = _describe(integration) if integration else {"state": "not_connected"}
    if integration is None:
        integration = Integration(organization_id=organization.id, provider=provider.key, config={})
        db.session.add(integration)
        db.session.flush()
    elif integration.external_id and integration.external_id != connection.external_id:
        _drop_directory(integration, reason="workspace_changed")
    integration.external_id = connection.external_id
    integration.display_name = connection.display_name[:200]
    integration.config = dict(connection.config)
    integration.set_secrets(connection.secrets)
    integration.token_expires_at = connection.token_expires_at
    integration.token_version = (integration.token_version or 0) + 1
    integration.state = IntegrationState.CONNECTED
    integration.connected_by_id = actor.id
    integration.connected_at = utcnow()
    integration.last_error = None
    integration.last_error_at = None
    audit.record(
        "integration.connected",
        organization=organization,
        actor=actor,
        target=("integration", integration.id, f"{provider.name}: {connection.display_name}"),
        before=before,
        after=_describe(integration),
    )
    db.session.flush()  # the event names the integration's id
    reports.integration_event("integration.connected", integration)
    return integration


def disconnect(provider: ChatProvider, integration: Integration, actor: User) -> bool:
    """Revoke at the provider (best effort), delete the secrets, keep links dormant; commit.

    Returns whether the provider confirmed the revocation. Local secrets are deleted either way
    (OA-28): a token we can no longer vouch for must not stay usable.
    """
    revoked = False
    if integration.secrets is not None and integration.state in LIVE_STATES:
        try:
            provider.client(integration).revoke()
            revoked = True
        except ProviderError as problem:
            log.warning("revocation failed: provider=%s code=%s", provider.key, problem.code)
    before = _describe(integration)
    _forget_secrets(integration)
    integration.state = IntegrationState.DISCONNECTED
    links = db.session.scalar(
        select(db.func.count())
        .select_from(AccountLink)
        .where(AccountLink.integration_id == integration.id)
    )
    audit.record(
        "integration.disconnected",
        organization=db.session.get(Organization, integration.organization_id),
        actor=actor,
        target=("integration", integration.id, integration.display_name),
        before=before,
        after=_describe(integration),
        data={"revoked_at_provider": revoked, "links_kept": links or 0},
    )
    reports.integration_event("integration.disconnected", integration)
    db.session.commit()
    return revoked


def handle_revoked(integration: Integration, reason: str) -> None:
    """The provider says our tokens are gone (uninstalled, revoked): stop using them; commit.

    The integration needs reconnecting (banner, admins e-mailed by ``mark_needs_reconnect``),
    its secrets are deleted (OA-27), deliveries fall back to e-mail.
    """
    if integration.state not in LIVE_STATES:
        return
    mark_needs_reconnect(integration, reason)
    _forget_secrets(integration)
    db.session.commit()
    alert_admins(integration.id)


def _forget_secrets(integration: Integration) -> None:
    integration.secrets = None
    integration.token_expires_at = None
    integration.token_version = (integration.token_version or 0) + 1


def _drop_directory(integration: Integration, reason: str) -> None:
    """Remove a previous workspace's accounts and links, auditing each removed link."""
    organization = db.session.get(Organization, integration.organization_id)
    rows = db.session.execute(
        select(AccountLink.user_id, ChatAccount.external_id, ChatAccount.name)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(AccountLink.integration_id == integration.id)
    ).all()
    for user_id, external_id, name in rows:
        audit.record(
            "link.removed",
            organization=organization,
            target=("user", user_id, None),
            before={"external_id": external_id, "name": name, "workspace": integration.external_id},
            data={"reason": reason},
        )
    db.session.execute(delete(AccountLink).where(AccountLink.integration_id == integration.id))
    # The old workspace's auto-link batches have nothing left to undo: the page forgets them.
    db.session.execute(delete(LinkBatch).where(LinkBatch.integration_id == integration.id))
    db.session.execute(delete(ChatAccount).where(ChatAccount.integration_id == integration.id))


def _describe(integration: Integration) -> dict[str, object]:
    """The audit-safe view of an integration (never a secret)."""
    return {
        "state": integration.state.value if integration.state else None,
        "external_id": integration.external_id,
        "name": integration.display_name,
        "channel": (integration.config or {}).get("channel_name"),
        "scopes": (integration.config or {}).get("scopes"),
    }
