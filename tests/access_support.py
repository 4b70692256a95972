"""Access rules of the people work: support console, member page actions, policy, CSV of links."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, LinkMethod
from tests.access import LOGIN, ORG_CHANGE, Case, same, scoped
from tests.access_integrations import connected

#: Support staff only; admins and members of any organization are refused.
SUPPORT_ONLY = same(anonymous=LOGIN, member=403, admin=403, support=200)

#: A member acting on their own link: another member's link (or organization's) is a 404.
OWN_LINK = same(anonymous=LOGIN, member=404, admin=404, support=403)
OWN_LINK[("member", "own")] = 302
OWN_LINK_PAGE = dict(OWN_LINK)
OWN_LINK_PAGE[("member", "own")] = 200

#: Admin-only pages of an organization (support staff only read other pages).
ADMIN_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)


def linked(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The tenant's member linked (by e-mail match, unconfirmed) to a Slack account."""
    extra = connected(tenants, tenant)
    member = tenants["member" if tenant == "own" else "other_member"]
    account = db.session.get(ChatAccount, extra["account"])
    assert account is not None
    link = AccountLink(
        organization_id=member.organization_id,
        integration_id=account.integration_id,
        user_id=member.id,
        chat_account_id=account.id,
        method=LinkMethod.EMAIL,
    )
    db.session.add(link)
    db.session.commit()
    from portal.me.notices import confirm_token

    return {"link": link.id, "token": confirm_token(link)}


ROUTES: dict[str, list[Case]] = {
    "support.index": [
        Case("GET", "/support", SUPPORT_ONLY),
        Case("GET", "/support?q=member", SUPPORT_ONLY),
    ],
    "support.member": [
        Case("GET", "/support/members/{user}{org}", SUPPORT_ONLY),
    ],
    "support.health": [Case("GET", "/support/health{org}", SUPPORT_ONLY)],
    "me.disown": [Case("POST", "/me/accounts/{link}/not-me", OWN_LINK, setup=linked)],
    "me.channel": [
        Case(
            "POST",
            "/me/accounts/channel",
            same(anonymous=LOGIN, member=302, admin=302, support=403),
            data={"channel": "both"},
        )
    ],
    "me.confirm": [Case("GET", "/me/links/confirm/{token}", OWN_LINK_PAGE, setup=linked)],
    "integrations.transfer_page": [
        Case("GET", "/settings/integrations/slack/links{org}", ADMIN_PAGE, setup=connected)
    ],
    "integrations.export_links": [
        Case("GET", "/settings/integrations/slack/links.csv{org}", ADMIN_PAGE, setup=connected)
    ],
    "integrations.import_links": [
        Case("POST", "/settings/integrations/slack/links/import{org}", ORG_CHANGE, setup=connected)
    ],
    "integrations.apply_links": [
        Case("POST", "/settings/integrations/slack/links/apply{org}", ORG_CHANGE, setup=connected)
    ],
    "me.policy": [
        Case("GET", "/settings/notification-policy{org}", ADMIN_PAGE),
        Case(
            "POST", "/settings/notification-policy{org}", ORG_CHANGE, data={"hold_sensitive": "on"}
        ),
    ],
}
