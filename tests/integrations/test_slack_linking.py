"""Directory sync, e-mail auto-link with preview, member list, account dialog, test message."""

from __future__ import annotations

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
    LinkMethod,
    SyncState,
)
from sandbox.testing import RunningSandbox

HX = {"HX-Request": "true"}


@pytest.fixture
def people(tenants: dict[str, Any], make_user: Any) -> dict[str, Any]:
    """Members as in the seeded Slack workspace: matching, deactivated there, other address."""
    own = tenants["own"]
    return {
        "m01": make_user(own, Role.MEMBER, "member01@demo.example", "佐藤 一"),
        "m02": make_user(own, Role.MEMBER, " Member02@Demo.example ".strip().lower(), "鈴木 二"),
        "m35": make_user(own, Role.MEMBER, "member35@demo.example", "退職 済"),
        "m37": make_user(own, Role.MEMBER, "member37@demo.example", "別 アドレス"),
    }


def account(external_email: str) -> ChatAccount:
    found = db.session.scalar(select(ChatAccount).where(ChatAccount.email == external_email))
    assert found is not None
    return found


def test_sync_skips_bots_leavers_and_invitees(slack: Integration, sandbox: RunningSandbox) -> None:
    run = db.session.scalar(select(DirectorySync))
    assert run.state is SyncState.DONE and run.pages == 1
    emails = set(db.session.scalars(select(ChatAccount.email)))
    assert "member01@demo.example" in emails and "admin@demo.example" in emails
    assert "member35@demo.example" not in emails  # deactivated in Slack
    assert "member40@demo.example" not in emails  # invited, not joined
    directory_users = sandbox.control("GET", "/_control/directory/slack")["T0DEMO0001"]["users"]
    bots = {u["id"] for u in directory_users if u["is_bot"] or u["id"] == "USLACKBOT"}
    assert not bots & set(db.session.scalars(select(ChatAccount.external_id)))
    assert run.fetched == db.session.scalar(select(func.count()).select_from(ChatAccount))


def test_resync_marks_leavers_inactive_and_links_newcomers(
    admin_client: Any, slack: Integration, people: dict[str, Any], sandbox: RunningSandbox
) -> None:
    admin_client.post_form("/settings/integrations/slack/members/auto-link")
    sandbox.control(
        "POST",
        "/_control/faults/deactivate-user",
        {"provider": "slack", "user": "member01@demo.example"},
    )
    response = admin_client.post_form("/settings/integrations/slack/sync", headers=HX)
    assert response.status_code == 200 and 'id="integrations-sync"' in response.text
    assert account("member01@demo.example").is_active is False
    run = directory.latest_sync(slack)
    assert run is not None and run.deactivated == 1


def test_autolink_preview_then_confirm(
    preview_only: None,
    admin_client: Any,
    slack: Integration,
    people: dict[str, Any],
    tenants: dict[str, Any],
) -> None:
    preview = linking.preview_email_matches(slack)
    matched = {user_id for user_id, _ in preview.matches}
    # admin, member01, member02 match; member35 (deactivated in Slack), member37 (other
    # address) and member@demo.example (not in Slack) are left.
    assert matched == {tenants["admin"].id, people["m01"].id, people["m02"].id}
    assert preview.left == 3 and preview.conflicts == []
    page = admin_client.get("/settings/integrations/slack/members/auto-link", headers=HX)
    assert page.text.lstrip().startswith('<section id="integrations-autolink"')
    assert 'data-matches="3"' in page.text
    assert db.session.scalar(select(func.count()).select_from(AccountLink)) == 0  # preview only
    response = admin_client.post_form("/settings/integrations/slack/members/auto-link", headers=HX)
    assert response.status_code == 200 and "members-changed" in response.headers["HX-Trigger"]
    links = db.session.scalars(select(AccountLink)).all()
    assert {link.user_id for link in links} == matched
    assert {link.method for link in links} == {LinkMethod.EMAIL}
    audited = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.created")
    ).all()
    assert len(audited) == 3 and all(e.after["method"] == "email" for e in audited)
    # Nothing left to match: the preview says so.
    assert linking.preview_email_matches(slack).matches == []


def test_autolink_reports_accounts_claimed_twice(
    admin_client: Any, slack: Integration, people: dict[str, Any]
) -> None:
    # member01's account is linked by hand to member02: member01's address is now "taken".
    linking.link_account(slack, people["m02"], account("member01@demo.example"), actor=None)
    preview = linking.preview_email_matches(slack)
    assert [email for email, _ in preview.conflicts] == ["member01@demo.example"]
    assert people["m01"].id not in {u for u, _ in preview.matches}


def test_member_list_search_filter_and_paging(
    admin_client: Any, slack: Integration, people: dict[str, Any], make_user: Any, tenants: Any
) -> None:
    admin_client.post_form("/settings/integrations/slack/members/auto-link")
    for n in range(55):
        make_user(tenants["own"], Role.MEMBER, f"bulk{n:02d}@demo.example", f"山田 {n:02d}")
    make_user(tenants["other"], Role.MEMBER, "yamada@sample.example", "山田 よそ")
    base = "/settings/integrations/slack/members"
    linked = admin_client.get(f"{base}?state=linked", headers=HX).text
    assert linked.lstrip().startswith('<section id="integrations-members"')
    assert "佐藤 一" in linked and "別 アドレス" not in linked
    unlinked = admin_client.get(f"{base}?state=unlinked").text
    assert "別 アドレス" in unlinked and "佐藤 一" not in unlinked
    search = admin_client.get(f"{base}?q=山田").text
    assert "山田 00" in search and "山田 よそ" not in search and "佐藤 一" not in search
    second = admin_client.get(f"{base}?q=山田&page=2", headers=HX).text
    assert "山田 54" in second and "山田 00" not in second
    assert admin_client.get(f"{base}?page=abc").status_code == 400


def test_choose_dialog_link_and_unlink(
    admin_client: Any, slack: Integration, people: dict[str, Any], tenants: dict[str, Any]
) -> None:
    member = people["m37"]
    url = f"/settings/integrations/slack/members/{member.id}"
    dialog = admin_client.get(f"{url}/choose", headers={**HX, "HX-Target": "dialog-root"})
    assert "<dialog data-onload-showmodal" in dialog.text
    found = admin_client.get(
        f"{url}/choose?q=demo-corp", headers={**HX, "HX-Target": "integrations-account-choices"}
    ).text
    assert found.lstrip().startswith('<div id="integrations-account-choices"')
    target = db.session.scalars(
        select(ChatAccount).where(ChatAccount.email.like("%@demo-corp.example"))
    ).first()
    assert target is not None
    assert target.name in found
    response = admin_client.post_form(
        f"{url}/link", {"chat_account_id": str(target.id)}, headers=HX
    )
    assert response.status_code == 200
    assert '"dialog:close": true' in response.headers["HX-Trigger"]
    assert f'id="integrations-member-{member.id}" hx-swap-oob="true"' in response.text
    link = linking.find_link(slack, member.id)
    assert link is not None and link.method is LinkMethod.MANUAL
    assert link.linked_by_id == tenants["admin"].id
    # The account is now shown as taken for someone else.
    other = admin_client.get(
        f"/settings/integrations/slack/members/{people['m01'].id}/choose?q=demo-corp",
        headers={**HX, "HX-Target": "integrations-account-choices"},
    ).text
    assert member.name in other
    taken = admin_client.post_form(
        f"/settings/integrations/slack/members/{people['m01'].id}/link",
        {"chat_account_id": str(target.id)},
        headers=HX,
    )
    assert taken.status_code == 422 and 'role="alert"' in taken.text
    unlinked = admin_client.post_form(f"{url}/unlink", headers=HX)
    assert unlinked.status_code == 200 and 'data-linked="false"' in unlinked.text
    events = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action.in_(["link.created", "link.removed"]),
            AuditEvent.target_id == str(member.id),
        )
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["link.created", "link.removed"]
    assert events[0].after["external_id"] == target.external_id and events[0].before is None
    assert events[1].before["external_id"] == target.external_id and events[1].after is None


def test_link_rejects_foreign_objects(
    admin_client: Any, slack: Integration, people: dict[str, Any], tenants: dict[str, Any]
) -> None:
    foreign_member = tenants["other_member"]
    response = admin_client.post_form(
        f"/settings/integrations/slack/members/{foreign_member.id}/link",
        {"chat_account_id": str(account("member01@demo.example").id)},
    )
    assert response.status_code == 404
    bogus = admin_client.post_form(
        f"/settings/integrations/slack/members/{people['m01'].id}/link",
        {"chat_account_id": "999999"},
        headers=HX,
    )
    assert bogus.status_code == 422
    assert linking.find_link(slack, people["m01"].id) is None
    assert linking.find_link(slack, foreign_member.id) is None


def test_send_test_message_goes_through_the_pipeline(
    admin_client: Any, slack: Integration, people: dict[str, Any], sandbox: RunningSandbox
) -> None:
    from portal.notifications.dispatcher import run_due

    admin_client.post_form("/settings/integrations/slack/members/auto-link")
    member = people["m01"]
    response = admin_client.post_form(
        f"/settings/integrations/slack/members/{member.id}/test", headers=HX
    )
    assert response.status_code == 200 and f'id="integrations-member-{member.id}"' in response.text
    synced = dict(account("member01@demo.example").extra or {})
    run_due()
    messages = sandbox.control(
        "GET", "/_control/messages?provider=slack&user=member01@demo.example"
    )
    # The auto-link also sent the member its link-change notice (issue 8), then the test DM.
    assert len(messages) == 2
    assert "Slack" in messages[0]["blocks"][0]["text"]["text"]  # "Your Slack account … linked"
    assert messages[1]["blocks"][0]["type"] == "header"
    # The DM channel Slack answered with is kept with the outcome, beside the synced keys.
    db.session.expire_all()
    kept = account("member01@demo.example").extra
    assert str(kept.pop("dm_channel")).startswith("D") and kept == synced


def test_a_sync_lost_with_its_worker_does_not_block_the_next(slack: Integration) -> None:
    from datetime import timedelta

    from portal.database import utcnow

    stuck = DirectorySync(
        organization_id=slack.organization_id,
        integration_id=slack.id,
        state=SyncState.RUNNING,
        updated_at=utcnow() - timedelta(minutes=30),
    )
    db.session.add(stuck)
    db.session.commit()
    fresh = directory.start_sync(slack, None)
    db.session.refresh(fresh)
    assert fresh.id != stuck.id and fresh.state is SyncState.DONE
    db.session.refresh(stuck)
    assert stuck.state is SyncState.FAILED and stuck.error == "interrupted"
