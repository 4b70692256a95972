"""E-mail auto-link after each directory sync, as the seed promises (issue 13, item 4).

「メールアドレスが同じ場合は、自動的にアカウント同士の紐付けが完了します」: the first sync of a
Slack workspace or Teams tenant links every unique, exact match as one batch (audited, method
e-mail, link notices with the "is this you?" link); addresses claimed twice, taken, or matching
only a deactivated account wait in the preview; later syncs link new hires; the organization
can choose preview only; the admin can undo exactly one automatic batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.accounts.permissions import Role
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.integrations import directory, linking
from portal.integrations.models import (
    AccountLink,
    ChatAccount,
    DirectorySync,
    Integration,
    LinkBatch,
    LinkMethod,
    SyncState,
)
from portal.me import services as me_services
from portal.notifications.models import Notification
from sandbox.config import DEMO_SLACK_TEAM_ID, DEMO_TENANT_ID, SAMPLE_SLACK_TEAM_ID
from sandbox.testing import RunningSandbox
from tests.integrations import slack_flow, teams_flow

HX = {"HX-Request": "true"}
PROVIDERS = ("slack", "teams")
#: How the sandbox calls a provider when deactivating one of its users.
SANDBOX_NAME = {"slack": "slack", "teams": "microsoft"}


def connect(provider: str, client: Any, sandbox: RunningSandbox) -> Integration:
    """Walk the provider's consent in the sandbox; the first sync runs inline (huey)."""
    if provider == "slack":
        response = slack_flow.install(client, sandbox)
    else:
        response = teams_flow.connect(client)
    assert response.status_code == 302, response.text[:300]
    integration = db.session.scalar(select(Integration).filter_by(provider=provider))
    assert integration is not None
    return integration


def duplicate_in_directory(sandbox: RunningSandbox, provider: str, email: str) -> None:
    """A second person in the provider's directory with the same address."""
    if provider == "slack":
        workspace = sandbox.state.slack.workspaces[DEMO_SLACK_TEAM_ID]
        original = next(u for u in workspace.users if u.email == email)
        workspace.users.append(replace(original, id="U0DUPLICATE", real_name="重複 アカウント"))
        workspace.reindex()
    else:
        tenant = sandbox.state.microsoft.tenants[DEMO_TENANT_ID]
        person = next(u for u in tenant.users if u.mail == email)
        tenant.users.append(
            replace(person, id="00000000-0000-4000-8000-00000000d0b1", display_name="重複")
        )
        tenant.reindex()


def links() -> dict[int, AccountLink]:
    return {link.user_id: link for link in db.session.scalars(select(AccountLink))}


def account(email: str) -> ChatAccount:
    found = db.session.scalar(select(ChatAccount).where(ChatAccount.email == email))
    assert found is not None
    return found


def resync(client: Any, provider: str) -> DirectorySync:
    assert client.post_form(f"/settings/integrations/{provider}/sync").status_code == 302
    run = db.session.scalar(select(DirectorySync).order_by(DirectorySync.id.desc()))
    assert run is not None
    db.session.refresh(run)
    return run


@pytest.fixture
def member(tenants: dict[str, Any], make_user: Any) -> Callable[[str], Any]:
    """A member of デモ株式会社 with ``memberNN@demo.example``."""

    def make(number: str) -> Any:
        return make_user(tenants["own"], Role.MEMBER, f"member{number}@demo.example")

    return make


@pytest.mark.parametrize("provider", PROVIDERS)
def test_first_sync_links_every_unique_exact_match(
    provider: str,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    member: Callable[[str], Any],
    make_user: Any,
) -> None:
    m01, m02, m03 = member("01"), member("02"), member("03")
    stranger = make_user(tenants["own"], Role.MEMBER, "nobody@demo.example")
    duplicate_in_directory(sandbox, provider, "member03@demo.example")
    integration = connect(provider, admin_client, sandbox)

    made = links()
    assert set(made) == {tenants["admin"].id, m01.id, m02.id}
    assert {link.method for link in made.values()} == {LinkMethod.EMAIL}
    batch = db.session.scalar(select(LinkBatch))
    assert batch is not None and batch.automatic and batch.linked == 3
    assert {link.batch_id for link in made.values()} == {batch.id}
    run = directory.latest_sync(integration)
    assert run is not None and run.state is SyncState.DONE and run.auto_linked == 3
    assert batch.sync_id == run.id
    # member03's address is claimed by two accounts: it waits for the admin, as does a
    # member with no account at all (and member@demo.example of the fixture).
    preview = linking.preview_email_matches(integration)
    assert [email for email, _ in preview.conflicts] == ["member03@demo.example"]
    assert preview.matches == [] and preview.left == 2
    assert m03.id not in made and stranger.id not in made
    # Audited one by one with method e-mail and the batch, and once for the batch.
    created = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.created"))
    assert sorted(int(e.target_id) for e in created) == sorted(made)
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.created")):
        assert event.after["method"] == "email" and event.data == {"batch": batch.id}
        assert event.after["provider"] == provider
    summary = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.auto_linked")
    ).one()
    assert summary.data["linked"] == 3 and summary.data["automatic"] is True
    assert summary.data["conflicts"] == 1 and summary.data["batch"] == batch.id
    # Each member got the link notice with the "is this you?" confirmation link.
    notices = db.session.scalars(select(Notification)).all()
    assert sorted(n.recipient_id for n in notices) == sorted(made)
    assert all(n.url and "/me/links/confirm/" in n.url for n in notices)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_later_sync_links_a_new_hire_and_leaves_taken_and_deactivated(
    provider: str,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    member: Callable[[str], Any],
) -> None:
    m01, m02 = member("01"), member("02")
    integration = connect(provider, admin_client, sandbox)
    first = db.session.scalar(select(LinkBatch))
    assert first is not None and first.linked == 3
    # m01's account is given to m02 by hand; m01 waits (its address is taken).
    linking.unlink_account(integration, m01, actor=tenants["admin"])
    linking.link_account(integration, m02, account("member01@demo.example"), actor=tenants["admin"])
    # member06 left the directory before joining the portal: only a deactivated account.
    sandbox.control(
        "POST",
        "/_control/faults/deactivate-user",
        {"provider": SANDBOX_NAME[provider], "user": "member06@demo.example"},
    )
    newcomer, former = member("10"), member("06")
    notices_before = db.session.scalar(select(func.count()).select_from(Notification)) or 0

    run = resync(admin_client, provider)

    assert run.state is SyncState.DONE and run.auto_linked == 1
    made = links()
    assert made[newcomer.id].method is LinkMethod.EMAIL
    assert made[newcomer.id].chat_account_id == account("member10@demo.example").id
    assert m01.id not in made and former.id not in made
    second = db.session.scalar(select(LinkBatch).order_by(LinkBatch.id.desc()))
    assert second is not None and second.id != first.id and second.linked == 1
    assert made[newcomer.id].batch_id == second.id
    preview = linking.preview_email_matches(integration)
    assert [email for email, _ in preview.conflicts] == ["member01@demo.example"]  # taken
    assert preview.deactivated == ["member06@demo.example"]
    notices = db.session.scalars(
        select(Notification).order_by(Notification.id).offset(notices_before)
    ).all()
    assert [n.recipient_id for n in notices if "/me/links/confirm/" in (n.url or "")] == [
        newcomer.id
    ]
    # A sync that finds nothing new makes no batch and no audit noise.
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    assert resync(admin_client, provider).auto_linked == 0
    assert db.session.scalar(select(func.count()).select_from(LinkBatch)) == 2
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events


@pytest.mark.parametrize("provider", PROVIDERS)
def test_preview_only_links_nobody_until_the_admin_confirms(
    provider: str,
    preview_only: None,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    member: Callable[[str], Any],
) -> None:
    m01 = member("01")
    integration = connect(provider, admin_client, sandbox)
    assert links() == {}
    assert db.session.scalar(select(LinkBatch)) is None
    run = directory.latest_sync(integration)
    assert run is not None and run.state is SyncState.DONE and run.auto_linked == 0
    preview = linking.preview_email_matches(integration)
    assert {user_id for user_id, _ in preview.matches} == {tenants["admin"].id, m01.id}
    page = admin_client.get(f"/settings/integrations/{provider}").text
    assert 'data-auto-link="off"' in page and "integrations-autolink-batch" not in page
    assert 'data-matches="2"' in page
    # A later sync (a new hire) still links nobody; the admin's button does, as one batch.
    m02 = member("02")
    assert resync(admin_client, provider).auto_linked == 0 and links() == {}
    confirmed = admin_client.post_form(f"/settings/integrations/{provider}/members/auto-link")
    assert confirmed.status_code == 302 and set(links()) == {tenants["admin"].id, m01.id, m02.id}
    batch = db.session.scalar(select(LinkBatch))
    assert batch is not None and not batch.automatic and batch.linked == 3
    assert batch.created_by_id == tenants["admin"].id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_undo_removes_exactly_the_batch_links_still_as_made(
    provider: str,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    member: Callable[[str], Any],
) -> None:
    m01, m02, m03 = member("01"), member("02"), member("03")
    integration = connect(provider, admin_client, sandbox)
    first = db.session.scalar(select(LinkBatch))
    assert first is not None and first.linked == 4
    # Since then: the admin relinked m01 by hand (a new link), m02 confirmed "this is me",
    # and a later sync linked a new hire (another batch).
    linking.unlink_account(integration, m01, actor=tenants["admin"])
    linking.link_account(integration, m01, account("member01@demo.example"), actor=tenants["admin"])
    me_services.confirm(m02, links()[m02.id])
    newcomer = member("10")
    assert resync(admin_client, provider).auto_linked == 1

    response = admin_client.post_form(
        f"/settings/integrations/{provider}/members/auto-link/undo",
        {"batch_id": str(first.id)},
        headers=HX,
    )

    assert response.status_code == 200 and "members-changed" in response.headers["HX-Trigger"]
    left = links()
    assert set(left) == {m01.id, m02.id, newcomer.id}
    assert left[m01.id].method is LinkMethod.MANUAL and left[m02.id].confirmed_at is not None
    db.session.refresh(first)
    assert first.undone_at is not None and first.undone == 2
    assert first.undone_by_id == tenants["admin"].id
    removed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.removed"))
    undone = [e for e in removed if (e.data or {}).get("reason") == "auto_link_undone"]
    assert sorted(int(e.target_id) for e in undone) == sorted([tenants["admin"].id, m03.id])
    assert all(e.before["method"] == "email" and e.data["batch"] == first.id for e in undone)
    summary = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.auto_link_undone")
    ).one()
    assert summary.data == {"batch": first.id, "removed": 2, "kept": 2, "provider": provider}
    # The unlinked members are told (the removal notice, by e-mail at least).
    told = db.session.scalars(
        select(Notification.recipient_id).where(
            Notification.title.contains("unlinked") | Notification.title.contains("解除")
        )
    ).all()
    assert {tenants["admin"].id, m03.id} <= set(told)
    # Undoing twice changes nothing.
    again = admin_client.post_form(
        f"/settings/integrations/{provider}/members/auto-link/undo", {"batch_id": str(first.id)}
    )
    assert again.status_code == 302 and set(links()) == {m01.id, m02.id, newcomer.id}


def test_provider_page_says_how_many_were_linked_and_need_the_admin(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], member: Any
) -> None:
    for number in ("01", "02", "37"):  # member37 uses another address in Slack
        member(number)
    connect("slack", admin_client, sandbox)
    page = admin_client.get("/settings/integrations/slack").text
    # admin, member01, member02 linked; member37 and member@demo.example need the admin.
    assert 'data-auto-linked="3"' in page and 'data-needs-admin="2"' in page
    assert 'data-undone="false"' in page and 'id="integrations-autolink-undo"' in page
    assert 'data-auto-link="on"' in page and "/settings/notification-policy" in page
    batch = db.session.scalar(select(LinkBatch))
    assert batch is not None
    undone = admin_client.post_form(
        "/settings/integrations/slack/members/auto-link/undo",
        {"batch_id": str(batch.id)},
        headers=HX,
    ).text
    assert 'data-undone="true"' in undone and 'id="integrations-autolink-undo"' not in undone
    assert links() == {}


def test_undo_refuses_another_integrations_batch(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], member: Any
) -> None:
    member("01")
    slack = connect("slack", admin_client, sandbox)
    teams = connect("teams", admin_client, sandbox)
    teams_batch = db.session.scalar(select(LinkBatch).where(LinkBatch.integration_id == teams.id))
    assert teams_batch is not None
    with pytest.raises(linking.LinkConflict):
        linking.undo_batch(slack, teams_batch.id, actor=tenants["admin"])
    response = admin_client.post_form(
        "/settings/integrations/slack/members/auto-link/undo", {"batch_id": "not-a-number"}
    )
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AccountLink)) == 4


def test_a_batch_failing_midway_leaves_no_link(
    admin_client: Any,
    sandbox: RunningSandbox,
    member: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member("01")
    member("02")
    record = linking.audit.record
    written: list[str] = []

    def failing(action: str, **kwargs: Any) -> Any:
        written.append(action)
        if written.count("link.created") == 2:
            raise RuntimeError("the database went away")
        return record(action, **kwargs)

    monkeypatch.setattr(linking.audit, "record", failing)
    integration = connect("slack", admin_client, sandbox)

    run = directory.latest_sync(integration)
    assert run is not None and run.state is SyncState.FAILED and run.error == "auto_link_failed"
    assert links() == {} and db.session.scalar(select(LinkBatch)) is None
    assert db.session.scalar(select(Notification)) is None
    # The directory itself was kept; the next sync links everyone at once.
    assert account("member01@demo.example").is_active
    monkeypatch.setattr(linking.audit, "record", record)
    assert resync(admin_client, "slack").auto_linked == 3


def test_another_workspace_forgets_the_old_batches(
    admin_client: Any, sandbox: RunningSandbox, member: Callable[[str], Any]
) -> None:
    member("01")
    slack = connect("slack", admin_client, sandbox)
    assert linking.latest_automatic_batch(slack) is not None
    assert admin_client.post_form("/settings/integrations/slack/disconnect").status_code == 302
    other = slack_flow.install(admin_client, sandbox, team=SAMPLE_SLACK_TEAM_ID)
    assert other.status_code == 302
    # サンプル商事's workspace has none of デモ株式会社's addresses: nothing to show or undo.
    assert links() == {} and linking.latest_automatic_batch(slack) is None
    page = admin_client.get("/settings/integrations/slack").text
    assert "integrations-autolink-batch" not in page


def test_chatwork_never_links_by_email(tenants: dict[str, Any]) -> None:
    from portal.integrations.registry import providers

    chatwork = providers.get("chatwork")
    assert chatwork is not None and chatwork.links_by_email is False
    integration = Integration(organization_id=tenants["own"].id, provider="chatwork", config={})
    assert linking.auto_link_enabled(integration) is False
