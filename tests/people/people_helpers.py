"""Objects the people tests need: a connected Slack integration with directory accounts."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)


def slack(organization: Any, accounts: int = 3) -> tuple[Integration, list[ChatAccount]]:
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
    rows = [
        ChatAccount(
            organization_id=organization.id,
            integration_id=integration.id,
            external_id=f"U{n:08d}",
            name=f"Slack 太郎{n}",
            email=f"person{n}@{organization.slug}.example",
        )
        for n in range(1, accounts + 1)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return integration, rows


def link(
    integration: Integration, user: Any, account: ChatAccount, method: LinkMethod
) -> AccountLink:
    row = AccountLink(
        organization_id=integration.organization_id,
        integration_id=integration.id,
        user_id=user.id,
        chat_account_id=account.id,
        method=method,
    )
    db.session.add(row)
    db.session.commit()
    return row
