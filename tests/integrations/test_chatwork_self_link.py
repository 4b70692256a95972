"""Members link their own Chatwork account (issue 15, item 1): OAuth as the member for
``users.profile.me:read``, then — when they are not a contact of the notification account —
the contact request they send is accepted through the API and its direct chat stored."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration, LinkMethod
from sandbox.testing import RunningSandbox
from tests.integrations import self_link_flow as flow
from tests.integrations.chatwork_flow import account_id, connect, demo_members
from tests.integrations.self_link_flow import own_link
from tests.integrations.slack_flow import query_of

RESUME = "/me/accounts/chatwork/resume"


@pytest.fixture
def members(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> dict[int, Any]:
    """Chatwork connected for デモ株式会社 and its 40 members (1–36 are contacts)."""
    people = demo_members(tenants["own"], make_user)
    response, _ = connect(admin_client, sandbox)
    assert response.status_code == 302, response.text[:300]
    assert db.session.scalar(select(Integration).filter_by(provider="chatwork")) is not None
    return dict(enumerate(people, start=1))


def browser_of(app: Flask, user: Any) -> Any:
    browser = app.test_client()
    browser.login(user)
    return browser


def chatwork_sign_in(authorize_url: str, mail: str, decision: str = "allow") -> str:
    """The sandbox's Chatwork consent page, logged in as the member ``mail``."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    answer = requests.post(
        page.url,
        data={"decision": decision, "member_mail": mail},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    location = answer.headers["Location"]
    return location[location.index("/me/") :]


def test_a_contact_links_at_once(app: Flask, members: dict[int, Any]) -> None:
    member = members[1]
    browser = browser_of(app, member)
    url = flow.start(browser, "chatwork")
    params = query_of(url)
    assert params["scope"] == "users.profile.me:read"  # nothing more of the member's account
    assert params["redirect_uri"].endswith("/me/accounts/chatwork/callback")
    assert params["code_challenge_method"] == "S256"
    browser.get(chatwork_sign_in(url, member.email))
    link = own_link(member, "chatwork")
    assert link is not None and link.method is LinkMethod.SELF and link.confirmed_at
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None and account.extra.get("room_id")


def test_not_a_contact_yet_sends_a_request_that_the_portal_accepts(
    app: Flask, members: dict[int, Any], sandbox: RunningSandbox
) -> None:
    member = members[39]
    browser = browser_of(app, member)
    browser.get(chatwork_sign_in(flow.start(browser, "chatwork"), member.email))
    assert own_link(member, "chatwork") is None
    page = browser.get("/me/accounts").text
    assert 'data-testid="resume-chatwork"' in page and "Wistant通知用" in page
    # Pressed too early: still waiting, nothing linked.
    browser.post_form(RESUME)
    assert own_link(member, "chatwork") is None
    sandbox.control("POST", "/_control/chatwork/contact-request", {"from": member.email})
    response = browser.post_form(RESUME)
    assert response.status_code == 302
    link = own_link(member, "chatwork")
    assert link is not None and link.method is LinkMethod.SELF
    account = db.session.get(ChatAccount, link.chat_account_id)
    assert account is not None and account.is_active and account.extra.get("room_id")
    notifier = account_id(sandbox)
    assert not any(r.to_id == notifier for r in sandbox.state.chatwork.requests.values())
    assert 'data-testid="resume-chatwork"' not in browser.get("/me/accounts").text


def test_someone_elses_request_is_never_accepted_for_the_member(
    app: Flask, members: dict[int, Any], sandbox: RunningSandbox
) -> None:
    member, other = members[39], members[40]
    browser = browser_of(app, member)
    browser.get(chatwork_sign_in(flow.start(browser, "chatwork"), member.email))
    sandbox.control("POST", "/_control/chatwork/contact-request", {"from": other.email})
    browser.post_form(RESUME)
    assert own_link(member, "chatwork") is None and own_link(other, "chatwork") is None
    assert any(r.to_id == account_id(sandbox) for r in sandbox.state.chatwork.requests.values())


def test_resume_without_a_sign_in_changes_nothing(app: Flask, members: dict[int, Any]) -> None:
    browser = browser_of(app, members[39])
    assert browser.post_form(RESUME).status_code == 302
    assert own_link(members[39], "chatwork") is None


def test_signing_in_as_the_notification_account_is_refused(
    app: Flask, members: dict[int, Any], sandbox: RunningSandbox
) -> None:
    member = members[2]
    browser = browser_of(app, member)
    url = flow.start(browser, "chatwork")
    page = requests.get(url, timeout=10)
    answer = requests.post(
        page.url,
        data={"decision": "allow", "account_id": str(account_id(sandbox))},
        allow_redirects=False,
        timeout=10,
    )
    location = answer.headers["Location"]
    browser.get(location[location.index("/me/") :])
    assert own_link(member, "chatwork") is None


def test_connections_without_the_scope_offer_no_button(app: Flask, members: dict[int, Any]) -> None:
    integration = db.session.scalar(select(Integration).filter_by(provider="chatwork"))
    assert integration is not None
    integration.config = {**integration.config, "scopes": ["contacts.all:read"]}
    db.session.commit()
    browser = browser_of(app, members[1])
    assert 'data-testid="connect-chatwork"' not in browser.get("/me/accounts").text
    assert (
        browser.post_form("/me/accounts/chatwork/connect")
        .headers["Location"]
        .endswith("/me/accounts")
    )
