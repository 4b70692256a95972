"""Access rules of notification categories (admins) and a member's own preferences."""

from __future__ import annotations

from typing import Any

from portal.preferences import categories
from tests.access import LOGIN, ORG_CHANGE, Case, same, scoped


def category(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    return {"category": categories.default(tenants[tenant]).id}


MANAGE_ORG_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=403)
#: A member's own page: no organization in the URL; support staff receive no notifications.
OWN_PAGE = same(anonymous=LOGIN, member=200, admin=200, support=403)
OWN_CHANGE = same(anonymous=LOGIN, member=302, admin=302, support=403)
NEW_CATEGORY = {"key": "matrix", "label_ja": "マトリクス", "label_en": "Matrix"}
RULE = {"label_ja": "一般", "label_en": "General", "chat_on": "on"}

ROUTES: dict[str, list[Case]] = {
    "preferences.category_list": [
        Case("GET", "/settings/notification-categories{org}", MANAGE_ORG_PAGE),
        Case("POST", "/settings/notification-categories{org}", ORG_CHANGE, NEW_CATEGORY),
    ],
    "preferences.category_update": [
        Case(
            "POST",
            "/settings/notification-categories/{category}{org}",
            ORG_CHANGE,
            RULE,
            setup=category,
        )
    ],
    "preferences.tool_order": [
        Case(
            "POST",
            "/settings/notification-categories/tool-order{org}",
            ORG_CHANGE,
            {"tool_0": "teams", "tool_1": "slack", "tool_2": "chatwork"},
        )
    ],
    "preferences.company_hours": [
        Case(
            "POST",
            "/settings/notification-policy/hours{org}",
            ORG_CHANGE,
            {
                "time_zone": "Asia/Tokyo",
                "work_days": "1",
                "work_start": "09:00",
                "work_end": "18:00",
            },
        )
    ],
    "preferences.my_hours": [Case("POST", "/me/preferences/hours", OWN_CHANGE)],
    "preferences.my_preferences": [
        Case("GET", "/me/preferences", OWN_PAGE),
        Case("POST", "/me/preferences", OWN_CHANGE),
    ],
}
