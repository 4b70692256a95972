"""Lookups shared by the integration views: each one scoped to the current organization."""

from __future__ import annotations

from flask import abort

from ...accounts.models import Organization, User
from ...accounts.tenancy import current_organization, member_or_404
from .. import linking
from ..models import Integration
from ..providers.base import ChatProvider
from ..registry import providers
from ..services import LIVE_STATES, find_integration


def get_provider_or_404(key: str) -> ChatProvider:
    """A registered provider; 404 for an unknown key or one without an implementation yet."""
    return providers.get_or_404(key)


def get_integration_or_404(organization: Organization, provider: ChatProvider) -> Integration:
    """The organization's connected (or failing) integration with ``provider``; else 404."""
    integration = find_integration(organization, provider.key)
    if integration is None or integration.state not in LIVE_STATES:
        abort(404)
    return integration


def get_member_context_or_404(key: str, user_id: int) -> tuple[ChatProvider, Integration, User]:
    """The provider, the current organization's live integration with it and one of its
    members: what every per-member action (choose, link, unlink, test) starts from."""
    chat = get_provider_or_404(key)
    organization = current_organization()
    integration = get_integration_or_404(organization, chat)
    return chat, integration, member_or_404(user_id)


def autolink_region(integration: Integration) -> dict[str, object]:
    """What the e-mail auto-link region shows: the preview, the newest automatic batch (with
    its undo) and whether syncs link by themselves."""
    return {
        "preview": linking.preview_email_matches(integration),
        "auto_batch": linking.latest_automatic_batch(integration),
        "auto_link_on": linking.auto_link_enabled(integration),
    }
