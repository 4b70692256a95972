"""Inviting the unlinked (issue 15, item 2): the admin invites; each unlinked member gets an
e-mail whose link works once, for them only, for 48 hours, and links only through the tool's
own sign-in after a POST; at most one invitation per member per 24 hours; all audited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

import demodata
from portal.accounts.permissions import Role
from portal.audit.models import AuditEvent
from portal.crypto import unseal
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import (
    ChatAccount,
    Integration,
    Invitation,
    InvitationState,
    LinkMethod,
)
from portal.me import invitations
from portal.notifications import dispatcher
from portal.notifications.models import Delivery
from sandbox.config import DEMO_SLACK_TEAM_ID
from sandbox.ids import short_id
from sandbox.testing import RunningSandbox
from tests.integrations import self_link_flow as flow
from tests.integrations.self_link_flow import own_link

INVITE = "/settings/integrations/slack/invitations"
M37 = "member37@demo.example"


@pytest.fixture
def m37(tenants: dict[str, Any], make_user: Any) -> Any:
    return make_user(tenants["own"], Role.MEMBER, M37, "別 アドレス")


def invitation_url(sandbox: RunningSandbox, email: str) -> str:
    """The link in the newest invitation e-mail to ``email``, as a portal path."""
    caught = sandbox.control("GET", f"/_control/mail?to={email}")
    texts = [m["text"] for m in caught if "/me/invitations/" in m["text"]]
    assert texts, caught
    match = re.search(r"https?://[^/\s]+(/me/invitations/[A-Za-z0-9_-]+)", texts[-1])
    assert match
    return match.group(1)


def browser_of(app: Flask, user: Any) -> Any:
    browser = app.test_client()
    browser.login(user)
    return browser


def test_an_invited_member_links_through_the_tool_sign_in(
    slack: Integration,
    admin_client: Any,
    sandbox: RunningSandbox,
    m37: Any,
    app: Flask,
    tenants: dict[str, Any],
) -> None:
    response = admin_client.post_form(INVITE)
    assert response.status_code == 302
    # The admin is linked (e-mail match); member37 and the demo member are not.
    invited = db.session.scalars(select(Invitation.user_id)).all()
    assert set(invited) == {m37.id, tenants["member"].id}
    assert all(len(i.token_hash) == 64 for i in db.session.scalars(select(Invitation)))
    path = invitation_url(sandbox, M37)
    assert db.session.scalar(select(func.count()).select_from(Invitation).where(
        Invitation.state == InvitationState.SENT)) == 2  # fmt: skip

    # Someone else's link, a forged one: clear pages, nothing linked.
    other = browser_of(app, tenants["member"])
    assert other.get(path).status_code == 410
    assert other.post_form(path).status_code == 410
    assert other.get("/me/invitations/forged-token").status_code == 404

    me = browser_of(app, m37)
    page = me.get(path)
    assert page.status_code == 200 and 'id="invitation-accept"' in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert own_link(m37) is None  # a GET links nothing
    answer = me.post_form(path)
    assert (
        answer.status_code == 302
        and "/slack/openid/connect/authorize" in answer.headers["Location"]
    )
    me.get(flow.sign_in(answer.headers["Location"], short_id("U", DEMO_SLACK_TEAM_ID, M37)))
    link = own_link(m37)
    assert link is not None and link.method is LinkMethod.SELF
    assert invitations.summary(slack)["linked"] == 1
    # Spent: the same link again is refused.
    assert me.post_form(path).status_code == 410
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"link.invited", "link.invitation_used", "link.created"} <= actions


def test_a_sign_in_cancelled_at_the_tool_leaves_the_invitation_usable(
    slack: Integration, admin_client: Any, sandbox: RunningSandbox, m37: Any, app: Flask
) -> None:
    admin_client.post_form(INVITE)
    path = invitation_url(sandbox, M37)
    me = browser_of(app, m37)
    slack_id = short_id("U", DEMO_SLACK_TEAM_ID, M37)
    first = me.post_form(path)
    me.get(flow.sign_in(first.headers["Location"], slack_id, decision="cancel"))
    assert own_link(m37) is None
    # Same member, same link: a second try goes through and then spends it.
    second = me.post_form(path)
    assert second.status_code == 302
    me.get(flow.sign_in(second.headers["Location"], slack_id))
    assert own_link(m37) is not None
    assert me.post_form(path).status_code == 410


def test_nobody_is_invited_twice_within_24_hours(
    slack: Integration, admin_client: Any, m37: Any, tenants: dict[str, Any]
) -> None:
    admin_client.post_form(INVITE)
    admin_client.post_form(INVITE)
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 2
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        admin_client.login(tenants["admin"])  # a day later: a new session
        admin_client.post_form(INVITE)  # the resend: both are still unlinked
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 4


def test_an_expired_link_is_refused(
    slack: Integration, admin_client: Any, sandbox: RunningSandbox, m37: Any, app: Flask
) -> None:
    admin_client.post_form(INVITE)
    path = invitation_url(sandbox, M37)
    with time_machine.travel(utcnow() + timedelta(hours=49)):
        me = browser_of(app, m37)
        page = me.get(path)
        assert page.status_code == 410 and "期限" in page.text
        assert invitations.summary(slack)["expired"] == 2


def test_the_provider_page_and_the_coverage_show_invitations_by_state(
    slack: Integration, admin_client: Any, m37: Any
) -> None:
    admin_client.post_form(INVITE)
    page = admin_client.get("/settings/integrations/slack").text
    assert 'data-invitation-state="sent"' in page and 'id="integrations-invite"' in page
    overview = admin_client.get("/settings/integrations").text
    assert 'class="meta coverage-invitations"' in overview and "送信済み 2" in overview


def test_the_coverage_invites_the_unlinked_and_returns_to_itself(
    slack: Integration, admin_client: Any, m37: Any, tenants: dict[str, Any]
) -> None:
    overview = admin_client.get("/settings/integrations").text
    assert 'class="inline coverage-invite"' in overview
    answer = admin_client.post_form(INVITE, {"back": "overview"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(
        "/settings/integrations"
    )
    assert set(db.session.scalars(select(Invitation.user_id))) == {m37.id, tenants["member"].id}


def test_a_filter_invites_only_the_members_it_finds(
    slack: Integration, admin_client: Any, m37: Any
) -> None:
    admin_client.post_form(INVITE, {"q": "member37"})
    assert db.session.scalars(select(Invitation.user_id)).all() == [m37.id]


def test_the_likely_account_also_gets_a_direct_message(
    slack: Integration,
    admin_client: Any,
    sandbox: RunningSandbox,
    tenants: dict[str, Any],
    make_user: Any,
) -> None:
    # member37 uses another address in Slack, but the same name: that account gets a DM.
    person = demodata.person(37)
    member = make_user(tenants["own"], Role.MEMBER, M37, person.name)
    admin_client.post_form(INVITE)
    slack_id = short_id("U", DEMO_SLACK_TEAM_ID, M37)
    account = db.session.scalar(select(ChatAccount).filter_by(external_id=slack_id))
    assert account is not None
    delivery = db.session.scalar(select(Delivery).where(Delivery.chat_account_id == account.id))
    assert delivery is not None and delivery.channel == "slack"
    dispatcher.run_due()
    sent = sandbox.control("GET", f"/_control/messages?provider=slack&user={slack_id}")
    assert any("/me/accounts" in str(m) for m in sent)
    assert own_link(member) is None  # a DM links nothing


MEMBERS = "/settings/integrations/slack/members"


def test_the_member_list_shows_each_members_latest_invitation_and_invites_one(
    slack: Integration,
    admin_client: Any,
    sandbox: RunningSandbox,
    m37: Any,
    tenants: dict[str, Any],
) -> None:
    page = admin_client.get(MEMBERS + "?state=unlinked").text
    assert 'class="small invite-member"' in page and "member-invitation" not in page
    # One member, from their line (an HTMX post answers with the line).
    answer = admin_client.post_form(f"{MEMBERS}/{m37.id}/invite", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert f'id="integrations-member-{m37.id}"' in answer.text
    assert (
        'data-invitation-state="queued"' in answer.text
        or 'data-invitation-state="sent"' in answer.text
    )
    assert "再度招待できます" in answer.text  # no button for 24 hours
    assert db.session.scalars(select(Invitation.user_id)).all() == [m37.id]
    invitation_url(sandbox, M37)  # the e-mail went out
    # Within 24 hours: refused, nothing new.
    again = admin_client.post_form(f"{MEMBERS}/{m37.id}/invite", headers={"HX-Request": "true"})
    assert again.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 1
    listed = admin_client.get(MEMBERS + "?state=unlinked").text
    assert 'data-invitation-state="sent"' in listed
    # Two days later the invitation has expired and the line offers the resend.
    with time_machine.travel(utcnow() + timedelta(hours=49)):
        admin_client.login(tenants["admin"])
        later = admin_client.get(MEMBERS + "?state=unlinked").text
        assert 'data-invitation-state="expired"' in later and "もう一度招待する" in later
        resent = admin_client.post_form(f"{MEMBERS}/{m37.id}/invite")
        assert resent.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 2


def test_a_linked_member_is_not_invited_from_their_line(
    slack: Integration, admin_client: Any, tenants: dict[str, Any]
) -> None:
    admin = tenants["admin"]  # linked by e-mail match in the fixture
    answer = admin_client.post_form(f"{MEMBERS}/{admin.id}/invite", headers={"HX-Request": "true"})
    assert answer.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0


def test_the_member_list_invites_the_unlinked_its_search_finds(
    slack: Integration, admin_client: Any, m37: Any
) -> None:
    page = admin_client.get(MEMBERS + "?state=unlinked&q=member37").text
    assert 'id="integrations-invite-listed"' in page
    answer = admin_client.post_form(INVITE, {"q": "member37", "back": "members"})
    assert answer.status_code == 302 and "/members" in answer.headers["Location"]
    assert db.session.scalars(select(Invitation.user_id)).all() == [m37.id]


def test_the_token_is_kept_only_sealed_and_only_until_the_mail_is_sent(
    slack: Integration, admin_client: Any, sandbox: RunningSandbox, m37: Any
) -> None:
    sent: list[list[int]] = []
    original = invitations.send_invitations
    invitations.send_invitations = lambda ids: sent.append(ids)  # type: ignore[assignment]
    try:
        admin_client.post_form(INVITE, {"q": "member37"})
    finally:
        invitations.send_invitations = original
    [ids] = sent
    assert all(isinstance(i, int) for i in ids)  # the queue carries ids, never a link
    invitation = db.session.get(Invitation, ids[0])
    assert invitation is not None and invitation.token_sealed is not None
    stored = invitation.token_sealed.stored  # what the database holds: ciphertext
    token = unseal(invitation.token_sealed, invitation.owner)
    assert isinstance(token, str) and token not in stored and len(token) > 30
    original(ids)
    db.session.refresh(invitation)
    assert invitation.state is InvitationState.SENT and invitation.token_sealed is None
    path = invitation_url(sandbox, M37)
    assert invitations.find(path.rsplit("/", 1)[1]) is not None
