"""Access rules of the Teams routes: the bot endpoint and step 2's live list.

The consent button (``integrations.setup_step``), the callback (``integrations.oauth_callback``)
and the provider page are the shared wizard routes, listed in access_integrations.py.
"""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, IntegrationState
from tests.access import ORG_CHANGE, ORG_PAGE, Case, same


def connected_teams(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    """A connected Teams tenant with one member who added the bot."""
    organization = tenants[tenant]
    integration = Integration(
        organization_id=organization.id,
        provider="teams",
        state=IntegrationState.CONNECTED,
        external_id=f"00000000-0000-4000-8000-{organization.id:012d}",
        display_name=organization.name,
        config={},
    )
    db.session.add(integration)
    db.session.flush()
    db.session.add(
        ChatAccount(
            organization_id=organization.id,
            integration_id=integration.id,
            external_id=f"aad-{organization.id}",
            name="Teams 花子",
            email="hanako@example.com",
            extra={"conversation_id": "a:1", "service_url": "https://smba.trafficmanager.net/x/"},
        )
    )
    db.session.commit()
    return {}


ROUTES: dict[str, list[Case]] = {
    # Bot Framework calls it without a browser session: no JWT → 401 whoever sends it.
    "integrations.teams_messages": [
        Case("POST", "/teams/messages", same(anonymous=401, member=401, admin=401, support=401))
    ],
    "integrations.teams_app_install": [
        Case(
            "GET", "/settings/integrations/teams/app-install{org}", ORG_PAGE, setup=connected_teams
        )
    ],
    # Starting a run against a tenant the sandbox does not know ends it at once: still a 302.
    "integrations.teams_app_install_start": [
        Case(
            "POST",
            "/settings/integrations/teams/app-install{org}",
            ORG_CHANGE,
            setup=connected_teams,
        )
    ],
    "integrations.teams_bot_installs": [
        Case(
            "GET", "/settings/integrations/teams/bot-installs{org}", ORG_PAGE, setup=connected_teams
        )
    ],
}
