"""Access rules of Chatwork's pages: setup, callback, connected page, name suggestions."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, IntegrationState
from tests.access import LOGIN, ORG_CHANGE, ORG_PAGE, Case, scoped


def connected(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    """A connected Chatwork integration with one contact, for the tenant under test."""
    organization = tenants[tenant]
    integration = Integration(
        organization_id=organization.id,
        provider="chatwork",
        state=IntegrationState.CONNECTED,
        external_id=str(9_000_000 + organization.id),
        display_name="Wistant通知用",
        config={"client_id": "client-id-for-tests", "account_name": "Wistant通知用"},
    )
    db.session.add(integration)
    db.session.flush()
    integration.set_secrets({"client_secret": "not-real", "access_token": "not-real"})
    account = ChatAccount(
        organization_id=organization.id,
        integration_id=integration.id,
        external_id="1000001",
        name="Chatwork 太郎",
        extra={"room_id": "2000001"},
    )
    db.session.add(account)
    db.session.commit()
    return {"account": account.id}


#: The setup form posted empty: 422 with the errors for an admin of the organization.
SAVE_CLIENT = scoped(anonymous=LOGIN, member=403, admin=422, support=403)
SAVE_CLIENT[("admin", "other")] = 404
#: The callback without a state: step 3 again with 400; another organization is a 404.
CALLBACK = scoped(anonymous=LOGIN, member=403, admin=400, support=403)
CALLBACK[("admin", "other")] = 404
#: The bulk preview is for admins only; support staff only read the page.
ADMIN_ONLY_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)

#: Chatwork's page, setup form and callback are the generic routes' (``access_integrations``).
GENERIC_ROUTES: dict[str, list[Case]] = {
    "integrations.provider": [
        Case("GET", "/settings/integrations/chatwork{org}", ORG_PAGE),
        Case("GET", "/settings/integrations/chatwork{org}", ORG_PAGE, setup=connected),
    ],
    "integrations.setup_step": [
        Case("POST", "/settings/integrations/chatwork/client{org}", SAVE_CLIENT)
    ],
    "integrations.oauth_callback": [Case("GET", "/chatwork/oauth/callback{org}", CALLBACK)],
}

ROUTES: dict[str, list[Case]] = {
    "integrations.chatwork_suggestions": [
        Case(
            "GET",
            "/settings/integrations/chatwork/suggestions{org}",
            ADMIN_ONLY_PAGE,
            setup=connected,
        )
    ],
    "integrations.chatwork_confirm_suggestions": [
        Case(
            "POST",
            "/settings/integrations/chatwork/suggestions{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.chatwork_confirm_one": [
        Case(
            "POST",
            "/settings/integrations/chatwork/members/{user}/suggestion{org}",
            ORG_CHANGE,
            setup=connected,
        )
    ],
    "integrations.chatwork_suggestions_region": [
        Case(
            "GET",
            "/settings/integrations/chatwork/suggestions/list{org}",
            ORG_PAGE,
            setup=connected,
        )
    ],
}
