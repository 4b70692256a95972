"""Fixtures for the delivery pipeline: API keys, a scripted chat provider, linked members."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portal.accounts.models import Organization, User
from portal.extensions import db
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)
from portal.integrations.registry import providers
from portal.notifications import api_keys
from tests.notifications.helpers import FAKE_KEY, ScriptedProvider


@pytest.fixture
def fake_provider() -> Iterator[ScriptedProvider]:
    """The scripted provider, registered under its own key (and so a channel) for one test."""
    providers.register(ScriptedProvider)
    fake = providers.get(FAKE_KEY)
    assert isinstance(fake, ScriptedProvider)
    yield fake
    providers.unregister(FAKE_KEY)


@pytest.fixture
def api_key(tenants: dict[str, Any]) -> str:
    _row, key = api_keys.create(tenants["own"], "tests", actor=None)
    return key


@pytest.fixture
def link_member(app: Any) -> Callable[..., AccountLink]:
    """Connect the fake provider for the member's organization and link the member to it."""

    def link(
        member: User, external_id: str | None = None, workspace: str | None = None
    ) -> AccountLink:
        organization = db.session.get(Organization, member.organization_id)
        assert organization is not None
        integration = (
            db.session.query(Integration)
            .filter_by(organization_id=organization.id, provider=FAKE_KEY)
            .one_or_none()
        )
        if integration is None:
            integration = Integration(
                organization_id=organization.id,
                provider=FAKE_KEY,
                state=IntegrationState.CONNECTED,
                external_id=workspace or f"W-{organization.slug}",
                display_name=f"{organization.name} workspace",
            )
            db.session.add(integration)
            db.session.flush()
        account = ChatAccount(
            organization_id=organization.id,
            integration_id=integration.id,
            external_id=external_id or f"U-{member.id}",
            name=member.name,
            email=member.email,
        )
        db.session.add(account)
        db.session.flush()
        row = AccountLink(
            organization_id=organization.id,
            integration_id=integration.id,
            user_id=member.id,
            chat_account_id=account.id,
            method=LinkMethod.MANUAL,
        )
        db.session.add(row)
        db.session.commit()
        return row

    return link
