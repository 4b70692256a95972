"""Access rules of the interactive DMs: Slack's interactivity URL and the page a DM without
buttons links to (``/me/notifications/<token>``)."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration
from portal.notifications.actions import issue_page_token
from portal.notifications.models import Notification
from tests.access import LOGIN, Case, same
from tests.access_support import linked

#: Only the notification's recipient, signed in: anyone else is refused (403).
RECIPIENT_PAGE = same(anonymous=LOGIN, member=403, admin=403, support=403)
RECIPIENT_PAGE[("member", "own")] = 200
RECIPIENT_CHANGE = dict(RECIPIENT_PAGE)
RECIPIENT_CHANGE[("member", "own")] = 302


def page_link(tenants: dict[str, Any], tenant: str) -> dict[str, Any]:
    """A notification asking for an acknowledgement, with a page link for its recipient."""
    link = linked(tenants, tenant)
    member = tenants["member" if tenant == "own" else "other_member"]
    notification = Notification(
        organization_id=member.organization_id,
        recipient_id=member.id,
        title="目標の確認",
        body="確認してください。",
        ack_requested=True,
    )
    db.session.add(notification)
    db.session.flush()
    account = db.session.scalar(
        db.select(ChatAccount).where(ChatAccount.organization_id == member.organization_id)
    )
    integration = db.session.get(Integration, account.integration_id)
    token = issue_page_token(notification, integration, account)
    db.session.commit()
    return {**link, "page": token}


ROUTES: dict[str, list[Case]] = {
    # Slack calls it without a browser session: unsigned → 401 whoever sends it.
    "integrations.slack_interactions": [
        Case("POST", "/slack/interactions", same(anonymous=401, member=401, admin=401, support=401))
    ],
    "me.notification_actions": [
        Case("GET", "/me/notifications/{page}", RECIPIENT_PAGE, setup=page_link),
        Case(
            "POST",
            "/me/notifications/{page}",
            RECIPIENT_CHANGE,
            data={"action": "acknowledge"},
            setup=page_link,
        ),
    ],
}
