"""Access rules of the Slack pages, the setup wizard, linking and the events endpoint."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, IntegrationState
from tests import access_chatwork as chatwork
from tests.access import LOGIN, ORG_CHANGE, ORG_PAGE, Case, same, scoped


def connected(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    """A connected Slack integration with one directory account, for the tenant under test."""
    organization = tenants[tenant]
    integration = Integration(
        organization_id=organization.id,
        provider="slack",
        state=IntegrationState.CONNECTED,
        external_id=f"T{organization.id:09d}",
        display_name=organization.name,
        config={"bot_user_id": "UBOT"},
    )
    db.session.add(integration)
    db.session.flush()
    integration.set_secrets({"access_token": "xoxb-not-a-real-token"})
    account = ChatAccount(
        organization_id=organization.id,
        integration_id=integration.id,
        external_id="U000000001",
        name="Slack 太郎",
        email="taro@example.com",
    )
    db.session.add(account)
    db.session.commit()
    return {"account": account.id}


#: The dialog and its actions are for admins only; support staff only read.
ADMIN_ONLY_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)

#: The OAuth callback without a state: 400 for an admin; naming another organization is a 404.
CALLBACK = scoped(anonymous=LOGIN, member=403, admin=400, support=403)
CALLBACK[("admin", "other")] = 404

ROUTES: dict[str, list[Case]] = {
    "integrations.provider": [
        Case("GET", "/settings/integrations/slack{org}", ORG_PAGE),
        Case("GET", "/settings/integrations/slack{org}", ORG_PAGE, setup=connected),
        Case("GET", "/settings/integrations/teams{org}", ORG_PAGE),
        *chatwork.GENERIC_ROUTES["integrations.provider"],
    ],
    "integrations.setup_step": [
        Case("POST", "/settings/integrations/slack/install{org}", ORG_CHANGE),
        *chatwork.GENERIC_ROUTES["integrations.setup_step"],
    ],
    "integrations.oauth_callback": [
        Case("GET", "/slack/oauth/callback{org}", CALLBACK),
        *chatwork.GENERIC_ROUTES["integrations.oauth_callback"],
    ],
    "integrations.sync_status": [
        Case("GET", "/settings/integrations/slack/sync{org}", ORG_PAGE, setup=connected)
    ],
    "integrations.resync": [
        Case("POST", "/settings/integrations/slack/sync{org}", ORG_CHANGE, setup=connected)
    ],
    "integrations.invite_unlinked": [
        Case("POST", "/settings/integrations/slack/invitations{org}", ORG_CHANGE, setup=connected)
    ],
    "integrations.disconnect": [
        Case("POST", "/settings/integrations/slack/disconnect{org}", ORG_CHANGE, setup=connected)
    ],
    "integrations.members": [
        Case("GET", "/settings/integrations/slack/members{org}", ORG_PAGE, setup=connected)
    ],
    "integrations.choose_account": [
        Case(
            "GET",
            "/settings/integrations/slack/members/{user}/choose{org}",
            ADMIN_ONLY_PAGE,
            setup=connected,
        )
    ],
    "integrations.link": [
        Case(
            "POST",
            "/settings/integrations/slack/members/{user}/link{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.unlink": [
        Case(
            "POST",
            "/settings/integrations/slack/members/{user}/unlink{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.send_test": [
        Case(
            "POST",
            "/settings/integrations/slack/members/{user}/test{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.invite_member": [
        Case(
            "POST",
            "/settings/integrations/slack/members/{user}/invite{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.autolink_preview": [
        Case(
            "GET", "/settings/integrations/slack/members/auto-link{org}", ORG_PAGE, setup=connected
        )
    ],
    "integrations.autolink": [
        Case(
            "POST",
            "/settings/integrations/slack/members/auto-link{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.autolink_undo": [
        Case(
            "POST",
            "/settings/integrations/slack/members/auto-link/undo{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    # Unsigned: refused before anything else, whoever sends it (the browser session is irrelevant).
    "integrations.slack_events": [
        Case("POST", "/slack/events", same(anonymous=401, member=401, admin=401, support=401))
    ],
}
