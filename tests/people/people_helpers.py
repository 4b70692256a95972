"""Objects the people tests need: a connected Slack integration with directory accounts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portal.extensions import db
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)


def connected(
    organization: Any,
    provider: str,
    accounts: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any] | None = None,
    external_id: str | None = None,
) -> tuple[Integration, list[ChatAccount]]:
    """A connected integration of ``provider`` whose directory holds ``accounts`` (ChatAccount
    fields: name, and optionally external_id, email, is_active, extra)."""
    integration = Integration(
        organization_id=organization.id,
        provider=provider,
        state=IntegrationState.CONNECTED,
        external_id=external_id or f"{provider}-{organization.id}",
        display_name=organization.name,
        config=dict(config or {}),
    )
    db.session.add(integration)
    db.session.flush()
    integration.set_secrets({"access_token": f"{provider}-not-a-real-token"})
    rows = [
        ChatAccount(
            organization_id=organization.id,
            integration_id=integration.id,
            **{"external_id": f"{provider}-{n}", **account},
        )
        for n, account in enumerate(accounts, start=1)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return integration, rows


def slack(organization: Any, accounts: int = 3) -> tuple[Integration, list[ChatAccount]]:
    return connected(
        organization,
        "slack",
        [
            {
                "external_id": f"U{n:08d}",
                "name": f"Slack 太郎{n}",
                "email": f"person{n}@{organization.slug}.example",
            }
            for n in range(1, accounts + 1)
        ],
        config={"bot_user_id": "UBOT"},
        external_id=f"T{organization.id:09d}",
    )


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
