"""Chatwork linking: contacts as the directory, name suggestions ("候補"), not-yet-contacts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import demodata
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.integrations.models import AccountLink, ChatAccount, Integration, LinkMethod
from portal.integrations.providers.chatwork import name_matching
from sandbox.chatwork.seed import display_name
from sandbox.testing import RunningSandbox
from tests.integrations.chatwork_flow import connect, demo_members

PAGE = "/settings/integrations/chatwork"


@pytest.fixture
def chatwork(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> Integration:
    demo_members(tenants["own"], make_user)
    response, _ = connect(admin_client, sandbox)
    assert response.status_code == 302
    return db.session.scalar(select(Integration))


@pytest.mark.parametrize(
    "contact",
    ["佐藤 翔太", "佐藤翔太", "佐藤\u3000翔太", "翔太 佐藤", "ｻﾄｳ ｼｮｳﾀ"[:0] + "佐藤　翔太"],
)
def test_name_keys_fold_spacing_width_and_order(contact: str) -> None:
    assert name_matching.name_keys("佐藤 翔太") & name_matching.name_keys(contact)


def test_name_keys_latin_and_kana() -> None:
    keys = name_matching.name_keys
    assert keys("SATO Shota") & keys("Shota Sato") & keys("ＳＡＴＯＵ　Ｓｈｏｕｔａ")
    assert keys("サトウ ショウタ") & keys("さとう しょうた") & keys("ｻﾄｳ ｼｮｳﾀ")
    assert not keys("佐藤 翔太") & keys("佐藤 陽菜")


def test_contacts_are_the_directory_without_email(chatwork: Integration) -> None:
    accounts = db.session.scalars(select(ChatAccount)).all()
    assert len(accounts) == 37  # member01-36 and the partner
    assert all(a.email is None and a.extra["room_id"].isdigit() for a in accounts)


def test_suggestions_match_written_forms_and_list_non_contacts(chatwork: Integration) -> None:
    report = name_matching.suggest(chatwork)
    people = {p.name: p for p in demodata.members(40, "demo.example")}
    suggested = {s.user_name for s in report.suggestions}
    for name, person in people.items():
        form = display_name(person)
        if person.number > 36:
            assert name in report.not_found  # pending requests and non-contacts
        elif not form.isascii():
            assert name in suggested, form  # kanji forms: spaces, width, order
    assert all(s.account_name for s in report.suggestions)
    assert report.not_found_count >= 4


def test_one_click_confirm_links_with_method_suggestion(
    admin_client: Any, chatwork: Integration
) -> None:
    first = name_matching.suggest(chatwork).suggestions[0]
    response = admin_client.post_form(f"{PAGE}/members/{first.user_id}/suggestion")
    assert response.status_code == 302
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == first.user_id))
    assert link.method is LinkMethod.SUGGESTION and link.chat_account_id == first.account_id
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.created")).one()
    assert event.after["method"] == "suggestion"


def test_bulk_confirm_previews_and_links_only_what_was_shown(
    admin_client: Any, chatwork: Integration
) -> None:
    preview = admin_client.get(f"{PAGE}/suggestions", headers={"HX-Request": "true"})
    assert preview.status_code == 200 and 'name="pair"' in preview.text
    report = name_matching.suggest(chatwork)
    pairs = [f"{s.user_id}:{s.account_id}" for s in report.suggestions]
    shown, stale = pairs[:-1], f"{report.suggestions[-1].user_id}:999999"
    response = admin_client.post_form(f"{PAGE}/suggestions", {"pair": [*shown, stale]})
    assert response.status_code == 302
    links = db.session.scalars(select(AccountLink)).all()
    assert len(links) == len(shown) and all(link.method is LinkMethod.SUGGESTION for link in links)
    summary = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.suggestions_confirmed")
    ).one()
    assert summary.data["linked"] == len(shown)


def test_page_lists_members_who_are_not_contacts(admin_client: Any, chatwork: Integration) -> None:
    page = admin_client.get(PAGE).text
    assert 'id="chatwork-not-contacts"' in page and "contacts.php" in page
    assert 'id="chatwork-suggestions"' in page and "chatwork-confirm-all" in page


def test_dialog_links_a_contact_by_hand(admin_client: Any, chatwork: Integration) -> None:
    member = db.session.scalar(
        select(AccountLink.user_id).where(AccountLink.integration_id == chatwork.id)
    )
    assert member is None
    from portal.accounts.models import User

    user = db.session.scalar(select(User).where(User.email == "member04@demo.example"))
    dialog = admin_client.get(f"{PAGE}/members/{user.id}/choose", headers={"HX-Request": "true"})
    assert dialog.status_code == 200 and "select-account" in dialog.text
    account = db.session.scalar(
        select(ChatAccount).where(ChatAccount.name == display_name(demodata.person(4)))
    )
    response = admin_client.post_form(
        f"{PAGE}/members/{user.id}/link", {"chat_account_id": account.id}
    )
    assert response.status_code == 302
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    assert link.method is LinkMethod.MANUAL
