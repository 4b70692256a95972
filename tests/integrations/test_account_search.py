"""The account dialog finds people by name, e-mail, and provider details such as a Chatwork
contact's organization or department (issue 6: "search by name, organization, department")."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.integrations import linking
from portal.integrations.models import ChatAccount, Integration, IntegrationState


def test_dialog_search_covers_department_and_organization(
    app: Any, tenants: dict[str, Any]
) -> None:
    integration = Integration(
        organization_id=tenants["own"].id, provider="chatwork", state=IntegrationState.CONNECTED
    )
    db.session.add(integration)
    db.session.flush()
    for n, (name, organization, department) in enumerate(
        [
            ("田中 翔太", "デモ株式会社", "人事部"),
            ("鈴木 陽菜", "デモ株式会社", "営業部"),
            ("Partner Ken", "取引先合同会社", ""),
        ]
    ):
        db.session.add(
            ChatAccount(
                organization_id=tenants["own"].id,
                integration_id=integration.id,
                external_id=str(1000 + n),
                name=name,
                extra={"organization_name": organization, "department": department},
            )
        )
    db.session.commit()

    def names(query: str) -> list[str]:
        choices, _total = linking.list_accounts(integration, query=query, page=1, per_page=20)
        return sorted(choice.account.name for choice in choices)

    assert names("人事") == ["田中 翔太"]
    assert names("取引先") == ["Partner Ken"]
    assert names("デモ株式会社") == ["田中 翔太", "鈴木 陽菜"]
    assert names("鈴木") == ["鈴木 陽菜"]
