"""What every chat provider must satisfy, as checks any test can run on any provider.

``test_provider_contract.py`` runs them over every provider the portal registers; the test-only
fourth provider (``tests/fourth_provider``) runs the same ones on itself. A check needs a
connected integration only for the client part; how a provider gets connected is the caller's
business (a sandbox walk, the fourth provider's in-process service).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, IntegrationState
from portal.integrations.pipeline import steps_signature
from portal.integrations.providers.base import (
    ChatProvider,
    DeliveryResult,
    DirectoryEntry,
    Message,
    PacingBudget,
    ProviderAuthError,
    RecipientNotFound,
)
from portal.integrations.registry import providers
from portal.integrations.wizard import SetupError
from portal.support.coverage import REASONS

KEY = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
SETTING = re.compile(r"^[A-Z][A-Z0-9_]+$")
MESSAGE = Message(title="契約テスト", body="本文 <b>", url="https://hr.example/contract")


def check_descriptor(provider: ChatProvider, app: Flask) -> None:
    """The class says everything the portal reads from it, consistently."""
    assert KEY.match(provider.key), provider.key
    assert provider.name and str(provider.connection_label)
    assert provider.rate_per_second > 0
    others = [p for p in providers.all() if p.key != provider.key]
    assert provider.order not in {p.order for p in others}, "two providers share a place"
    names = [setting.name for setting in provider.url_settings]
    assert len(names) == len(set(names))
    for setting in provider.url_settings:
        assert SETTING.match(setting.name)
        assert setting.default.startswith("https://"), setting.name
        assert "127.0.0.1" not in setting.default and "localhost" not in setting.default
        assert setting.sandbox.startswith("/")
        assert setting.name in app.config, f"{setting.name} is not configured"
    assert set(provider.consent_settings) <= set(names), "consent pages are URL settings"
    for other in provider.settings:
        assert SETTING.match(other.name) and other.name not in names
        assert other.name in app.config, f"{other.name} is not configured"
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    for reason, info in provider.coverage_reasons.items():
        assert reason not in REASONS, f"{reason} hides a generic coverage reason"
        assert info.endpoint in endpoints and str(info.label) and str(info.step)
    assert Path(provider.template_folder()).is_dir()
    with app.test_request_context():
        assert provider.icon_url()


def check_steps(provider: ChatProvider, app: Flask) -> None:
    """The wizard is data the engine can run: named steps, each with a template."""
    steps = provider.setup_steps()
    assert steps, "a provider without a wizard cannot be connected"
    names = [step.name for step in steps]
    assert len(names) == len(set(names)) and all(KEY.match(name) for name in names)
    assert steps_signature(steps) == steps_signature(provider.setup_steps())
    if any(step.auto for step in steps):
        assert "callback" in names, "a step that leaves for the provider needs the callback"
    for step in steps:
        assert str(step.title)
        assert step.returns_to is None or names.index(step.returns_to) < names.index(step.name)
        app.jinja_env.select_template(
            [
                f"integrations/providers/{provider.key}/_step_{step.name}.html",
                f"integrations/setup/_step_{step.name}.html",
            ]
        )
    with pytest.raises(SetupError):
        provider.build_connection({})


def check_pages(provider: ChatProvider, admin_client: Any) -> None:
    """The provider's page shows its first step, whose form the engine answers."""
    first = provider.setup_steps()[0].name
    page = admin_client.get(f"/settings/integrations/{provider.key}")
    assert page.status_code == 200, page.text[:300]
    assert f'action="/settings/integrations/{provider.key}/{first}"' in page.text
    assert admin_client.get("/settings/integrations").status_code == 200
    posted = admin_client.post_form(f"/settings/integrations/{provider.key}/{first}")
    assert posted.status_code in (302, 422), posted.text[:300]  # off to consent, or the form


def check_client(provider: ChatProvider, integration: Integration, reachable: ChatAccount) -> None:
    """The installed side behaves: directory pages, a DM, errors in the ProviderError tree."""
    assert integration.state is IntegrationState.CONNECTED
    pages = list(provider.client(integration).iter_directory())
    entries = [entry for page in pages for entry in page]
    assert entries and all(isinstance(entry, DirectoryEntry) for entry in entries)
    assert all(entry.external_id and entry.name for entry in entries)
    assert all(entry.email is None or "@" in entry.email for entry in entries)
    stored = db.session.scalars(
        select(ChatAccount.external_id).where(ChatAccount.integration_id == integration.id)
    ).all()
    assert {entry.external_id for entry in entries} <= set(stored), "the sync stored them"

    budgets = provider.budgets(integration, reachable)
    assert budgets and all(isinstance(budget, PacingBudget) for budget in budgets)
    assert budgets[0] == provider.pacing(integration)
    assert all(b.key.startswith(f"{provider.key}:") and b.rate > 0 for b in budgets)

    assert provider.unreachable_reason(reachable.extra or {}) is None
    result = provider.client(integration).send_direct_message(reachable, MESSAGE)
    assert isinstance(result, DeliveryResult)

    nobody = ChatAccount(
        organization_id=integration.organization_id,
        integration_id=integration.id,
        external_id="U0NOBODY0",
        name="誰でもない",
        extra={},
    )
    with pytest.raises(RecipientNotFound):
        provider.client(integration).send_direct_message(nobody, MESSAGE)

    if integration.get_secrets().get("access_token"):
        # A connection holding its own token: without it, the worker must be told to reconnect.
        integration.set_secrets({})
        with pytest.raises(ProviderAuthError):
            provider.client(integration).send_direct_message(reachable, MESSAGE)
        db.session.rollback()
