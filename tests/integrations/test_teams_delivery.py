"""Teams against the sandbox: the bot install greeting, linking, DMs through the pipeline,
uninstall, WH-19, and the Bot Connector error mapping.

The sandbox posts install activities to the portal with a real channel JWT, so the portal is
served for real (``live_server``).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, Integration, LinkMethod
from portal.integrations.providers.base import (
    Message,
    ProviderError,
    ProviderRateLimited,
    RecipientNotFound,
    TemporaryProviderError,
)
from portal.integrations.providers.teams import TeamsProvider, conversation_budget
from portal.integrations.providers.teams.client import render_message
from portal.notifications import dispatcher, pacing
from portal.notifications.models import Delivery, DeliveryState
from portal.notifications.services import send_test_message
from sandbox.testing import RunningSandbox
from tests.integrations.conftest import calls
from tests.integrations.teams_flow import connect

MESSAGE = Message(title="1on1のリマインド", body="明日 10:00", url="https://x.example/1")
SEND = "microsoft:POST /botconnector/v3/conversations/{id}/activities"


@pytest.fixture
def teams(live_server: str, admin_client: Any, sandbox: RunningSandbox) -> Integration:
    """The demo tenant connected (admin consent), its directory read."""
    assert connect(admin_client).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration is not None
    return integration


def account(email: str) -> ChatAccount:
    found = db.session.scalar(select(ChatAccount).where(ChatAccount.email == email))
    assert found is not None
    db.session.refresh(found)
    return found


def install(sandbox: RunningSandbox, email: str) -> list[int | None]:
    answer = sandbox.control("POST", "/_control/teams/install", {"user": email})
    return list(answer["portal"])


def received(sandbox: RunningSandbox, email: str) -> list[dict[str, Any]]:
    return list(sandbox.control("GET", f"/_control/messages?provider=microsoft&user={email}"))


def test_adaptive_card_has_title_body_link_and_fallback() -> None:
    activity = render_message(MESSAGE)
    card = activity["attachments"][0]["content"]
    assert activity["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [b["text"] for b in card["body"]] == ["1on1のリマインド", "明日 10:00"]
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "詳細を開く",
        "url": "https://x.example/1",
    }
    assert (
        card["fallbackText"].startswith("1on1のリマインド")
        and "x.example/1" in card["fallbackText"]
    )


def test_install_greets_once_and_stores_the_reference(
    teams: Integration, sandbox: RunningSandbox, admin_client: Any
) -> None:
    assert install(sandbox, "member01@demo.example") == [200, 200]
    messages = received(sandbox, "member01@demo.example")
    target = account("member01@demo.example")
    # conversationUpdate and installationUpdate arrive for one install: one greeting.
    assert [m["text"] for m in messages] == [f"こんにちは{target.name}さん"]
    extra = target.extra
    assert extra["conversation_id"].startswith("a:") and extra["teams_user_id"].startswith("29:")
    assert extra["service_url"].startswith(sandbox.https_url)
    page = admin_client.get("/settings/integrations/teams/bot-installs?seen=0")
    assert target.name in page.text and 'data-installed="1"' in page.text
    assert "members-changed" in page.headers.get("HX-Trigger", "")
    # Not linked: member01 is no member of the portal here (the connection's first sync
    # linked only the admin, by e-mail).
    linked = db.session.scalars(select(AccountLink.chat_account_id)).all()
    assert target.id not in linked and len(linked) == 1


def test_linked_member_gets_the_card_and_unlinked_falls_back(
    teams: Integration,
    sandbox: RunningSandbox,
    admin_client: Any,
    make_user: Any,
    tenants: dict[str, Any],
) -> None:
    own = tenants["own"]
    installed = make_user(own, email="member01@demo.example", name="メンバー 一")
    absent = make_user(own, email="member02@demo.example", name="メンバー 二")
    install(sandbox, "member01@demo.example")
    for user in (installed, absent):
        response = admin_client.post_form(
            f"/settings/integrations/teams/members/{user.id}/link",
            {"chat_account_id": str(account(user.email).id)},
        )
        assert response.status_code == 302, response.text[:300]
    send_test_message(installed, actor=tenants["admin"])
    send_test_message(absent, actor=tenants["admin"])
    dispatcher.run_due()
    messages = received(sandbox, "member01@demo.example")
    test = [m for m in messages if "Chat Connect" in m["text"]]
    assert len(test) == 1
    card = test[0]["activity"]
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    # member02 never added the bot: e-mail, with the reason, and the link flagged.
    failed = db.session.scalar(
        select(Delivery).where(Delivery.chat_account_id == account("member02@demo.example").id)
    )
    assert failed.last_error_code == "bot_not_installed"
    mail = sandbox.control("GET", "/_control/mail?to=member02@demo.example")
    assert any("Chat Connect" in str(m) for m in mail)
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == absent.id))
    assert link.flagged_reason == "bot_not_installed"


def test_uninstall_forgets_the_conversation_and_flags_the_link(
    teams: Integration, sandbox: RunningSandbox, make_user: Any, tenants: dict[str, Any]
) -> None:
    user = make_user(tenants["own"], email="member03@demo.example")
    install(sandbox, "member03@demo.example")
    from portal.integrations.linking import link_account

    link_account(teams, user, account("member03@demo.example"), actor=tenants["admin"])
    assert sandbox.control("POST", "/_control/teams/uninstall", {"user": "member03@demo.example"})[
        "portal"
    ] == [200]
    target = account("member03@demo.example")
    assert "conversation_id" not in target.extra and target.extra.get("removed_at")
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    db.session.refresh(link)
    assert link.flagged_reason == "bot_removed"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "link.flagged"))
    # A later send: Teams refuses (blocked), the member is e-mailed instead.
    with pytest.raises(RecipientNotFound) as problem:
        TeamsProvider().client(teams).send_direct_message(target, MESSAGE)
    assert problem.value.code == "MessageWritesBlocked"
    # Adding the bot again makes the member reachable again.
    install(sandbox, "member03@demo.example")
    db.session.refresh(link)
    assert link.flagged_reason is None and account("member03@demo.example").extra["conversation_id"]


def test_install_links_by_object_id_while_auto_link_is_on(
    teams: Integration,
    sandbox: RunningSandbox,
    admin_client: Any,
    make_user: Any,
    tenants: dict[str, Any],
) -> None:
    newcomer = make_user(tenants["own"], email="member05@demo.example")  # joined since
    install(sandbox, "member05@demo.example")
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == newcomer.id))
    assert link is not None and link.method is LinkMethod.BOT_INSTALL
    assert link.chat_account_id == account("member05@demo.example").id
    # Preview only: a later newcomer who adds the bot waits for the admin.
    tenants["own"].auto_link_by_email = False
    db.session.commit()
    cautious = make_user(tenants["own"], email="member06@demo.example")
    install(sandbox, "member06@demo.example")
    assert db.session.scalar(select(AccountLink).where(AccountLink.user_id == cautious.id)) is None


def test_proactive_conversation_when_reference_is_gone(
    teams: Integration, sandbox: RunningSandbox
) -> None:
    install(sandbox, "member06@demo.example")
    target = account("member06@demo.example")
    target.extra = {k: v for k, v in target.extra.items() if k != "conversation_id"}
    db.session.commit()
    result = TeamsProvider().client(teams).send_direct_message(target, MESSAGE)
    assert result.provider_message_id
    assert calls(sandbox, "microsoft:POST /botconnector/v3/conversations") == 1
    assert account("member06@demo.example").extra["conversation_id"].startswith("a:")


def test_wh19_service_url_off_the_allow_list_is_a_permanent_failure(
    teams: Integration, sandbox: RunningSandbox, make_user: Any, tenants: dict[str, Any]
) -> None:
    user = make_user(tenants["own"], email="member07@demo.example")
    install(sandbox, "member07@demo.example")
    target = account("member07@demo.example")
    target.extra = {**target.extra, "service_url": "https://evil.example/amer/"}
    db.session.commit()
    from portal.integrations.linking import link_account

    link_account(teams, user, target, actor=tenants["admin"])
    before = calls(sandbox, "microsoft:POST /login/{id}/oauth2/v2.0/token")
    with pytest.raises(ProviderError) as problem:
        TeamsProvider().client(teams).send_direct_message(target, MESSAGE)
    assert problem.value.code == "service_url_not_allowed" and not problem.value.retryable
    assert calls(sandbox, "microsoft:POST /login/{id}/oauth2/v2.0/token") == before
    send_test_message(user, actor=tenants["admin"])
    dispatcher.run_due()
    delivery = db.session.scalar(select(Delivery).where(Delivery.chat_account_id == target.id))
    assert delivery.state.value in ("failed", "dead")
    assert delivery.last_error_code == "service_url_not_allowed"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ProviderRateLimited),
        (412, TemporaryProviderError),
        (502, TemporaryProviderError),
        (504, TemporaryProviderError),
    ],
)
def test_retryable_connector_statuses(
    teams: Integration, sandbox: RunningSandbox, status: int, expected: type
) -> None:
    install(sandbox, "member08@demo.example")
    sandbox.control("POST", "/_control/faults/fail", {"match": SEND, "status": status})
    with pytest.raises(expected) as problem:
        TeamsProvider().client(teams).send_direct_message(account("member08@demo.example"), MESSAGE)
    assert problem.value.retryable


def test_bot_token_is_cached(teams: Integration, sandbox: RunningSandbox) -> None:
    install(sandbox, "member09@demo.example")
    client = TeamsProvider().client(teams)
    before = calls(sandbox, "microsoft:POST /login/{id}/oauth2/v2.0/token")
    for _ in range(3):
        client.send_direct_message(account("member09@demo.example"), MESSAGE)
    assert calls(sandbox, "microsoft:POST /login/{id}/oauth2/v2.0/token") == before


def test_pacing_per_tenant_is_under_teams_limit(teams: Integration) -> None:
    budget = TeamsProvider().pacing(teams)
    assert budget.key == f"teams:{teams.external_id}"
    assert budget.rate + budget.burst <= 30  # never more than 30 requests in any second


def test_a_dm_draws_from_the_tenant_and_the_members_conversation(
    teams: Integration,
    sandbox: RunningSandbox,
    admin_client: Any,
    make_user: Any,
    tenants: dict[str, Any],
) -> None:
    """Teams limits each conversation too: the worker waits for that bucket, not the client."""
    user = make_user(tenants["own"], email="member01@demo.example", name="メンバー 一")
    assert TeamsProvider().budgets(teams, account(user.email)) == [TeamsProvider().pacing(teams)]
    install(sandbox, user.email)
    target = account(user.email)
    response = admin_client.post_form(
        f"/settings/integrations/teams/members/{user.id}/link",
        {"chat_account_id": str(target.id)},
    )
    assert response.status_code == 302, response.text[:300]
    tenant, conversation = TeamsProvider().budgets(teams, target)
    assert tenant == TeamsProvider().pacing(teams)
    assert conversation == conversation_budget(str(target.extra["conversation_id"]))
    assert conversation.key.startswith("teams:conversation:")
    assert (conversation.rate, conversation.burst) == (0.49, 7)
    pacing.block(conversation.key, 60)
    send_test_message(user, actor=tenants["admin"])
    dispatcher.run_due()
    delivery = db.session.scalar(select(Delivery).where(Delivery.chat_account_id == target.id))
    assert delivery is not None
    assert delivery.state is DeliveryState.RETRYING and delivery.attempts == 0
    assert not [m for m in received(sandbox, user.email) if "Chat Connect" in m["text"]]
