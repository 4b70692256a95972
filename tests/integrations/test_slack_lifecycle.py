"""New hires and leavers between syncs (issue 15, item 4): Slack's signed ``team_join`` and
``user_change`` events reach the real portal server; a daily sync covers the other tools."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from portal.accounts.permissions import Role
from portal.database import utcnow
from portal.extensions import db
from portal.integrations import directory
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    DirectorySync,
    Integration,
    LinkMethod,
)
from sandbox.testing import RunningSandbox
from tests.integrations.slack_flow import install
from tests.integrations.test_slack_delivery_events import post_event

TEAM = "T0DEMO0001"


@pytest.fixture
def slack_live(live_server: str, admin_client: Any, sandbox: RunningSandbox) -> Integration:
    assert install(admin_client, sandbox).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="slack"))
    assert integration is not None
    return integration


def link_of(email: str) -> AccountLink | None:
    return db.session.scalar(
        select(AccountLink)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(ChatAccount.email == email)
    )


def test_a_new_hire_is_stored_and_linked_by_email(
    slack_live: Integration, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> None:
    hire = make_user(tenants["own"], Role.MEMBER, "newhire@demo.example", "新入 社員")
    answer = sandbox.control(
        "POST",
        "/_control/slack/people",
        {"team_id": TEAM, "action": "join", "email": "newhire@demo.example", "name": "新入 社員"},
    )
    assert answer["portal"] == 200
    link = link_of("newhire@demo.example")
    assert link is not None and link.user_id == hire.id and link.method is LinkMethod.EMAIL


def test_a_leaver_is_deactivated_and_flagged(
    slack_live: Integration, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    link = link_of("admin@demo.example")
    assert link is not None and not link.flagged_reason
    sandbox.control(
        "POST",
        "/_control/slack/people",
        {"team_id": TEAM, "action": "leave", "email": "admin@demo.example"},
    )
    db.session.refresh(link)
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None
    db.session.refresh(account)
    assert link.flagged_reason == "account_deleted" and not account.is_active


def test_no_automatic_link_when_the_company_previews_only(
    preview_only: None,
    slack_live: Integration,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    make_user: Any,
) -> None:
    make_user(tenants["own"], Role.MEMBER, "newhire@demo.example", "新入 社員")
    sandbox.control(
        "POST",
        "/_control/slack/people",
        {"team_id": TEAM, "action": "join", "email": "newhire@demo.example"},
    )
    assert db.session.scalar(select(ChatAccount).filter_by(email="newhire@demo.example"))
    assert link_of("newhire@demo.example") is None


@pytest.mark.parametrize(
    "user",
    [
        {"id": 12},
        {"id": "U1", "deleted": "yes"},
        {"id": "U1", "profile": {"email": ["a@b"]}},
        {"id": "U1", "profile": "x"},
        {"id": "U" * 40},
        "not an object",
    ],
)
def test_wrong_types_inside_a_signed_user_event_are_400_and_change_nothing(
    slack_live: Integration, admin_client: Any, user: Any
) -> None:
    before = db.session.scalar(select(func.count()).select_from(ChatAccount))
    body = json.dumps(
        {"type": "event_callback", "team_id": TEAM, "event_id": "Ev0BAD",
         "event": {"type": "team_join", "user": user}}
    ).encode()  # fmt: skip
    assert post_event(admin_client, body).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(ChatAccount)) == before


def test_the_daily_sync_starts_for_day_old_connections(slack_live: Integration) -> None:
    runs = db.session.scalar(select(func.count()).select_from(DirectorySync))
    directory.sync_daily()  # the install's sync is fresh: nothing starts
    assert db.session.scalar(select(func.count()).select_from(DirectorySync)) == runs
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        directory.sync_daily()
    assert db.session.scalar(select(func.count()).select_from(DirectorySync)) == runs + 1
