"""「通知カテゴリ」 (issue 16 items 1–2): every organization starts with the default set; admins
add categories and set each one's defaults and locks per channel; bad input is refused with
the form kept and nothing saved; every change is audited; another organization's category is
a 404; the order of tools is saved whole or not at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.preferences import categories
from portal.preferences.models import NotificationCategory

PAGE = "/settings/notification-categories"
HTMX = {"HX-Request": "true"}


def count() -> int:
    return int(db.session.scalar(select(func.count()).select_from(NotificationCategory)) or 0)


def test_every_organization_starts_with_the_default_set(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    keys = [c.key for c in categories.all_for(tenants["own"])]
    assert keys == ["general", "one_on_one", "feedback", "goals", "survey"]
    for label in ("通知カテゴリ", "一般", "1on1", "フィードバック", "目標", "サーベイ"):
        assert label in page.text
    # Asking again creates nothing more; the other organization has its own set.
    categories.all_for(tenants["own"])
    categories.all_for(tenants["other"])
    assert count() == 10


def test_an_admin_adds_a_category_and_it_is_audited(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    answer = admin_client.post_form(
        PAGE, {"key": "pulse", "label_ja": "パルス", "label_en": "Pulse", "description": "週次"}
    )
    assert answer.status_code == 302
    pulse = categories.find(tenants["own"], "pulse")
    assert pulse is not None and (pulse.chat_on, pulse.email_on) == (True, False)
    assert pulse.position == 5
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "category.created"))
    assert event is not None and event.after["category"] == "pulse"


def test_bad_categories_are_refused_with_nothing_saved(admin_client: Any) -> None:
    admin_client.get(PAGE)
    before = count()
    for data, message in [
        ({"key": "Bad Key", "label_ja": "x", "label_en": "x"}, "半角英小文字"),
        ({"key": "general", "label_ja": "x", "label_en": "x"}, "すでにあります"),
        ({"key": "ok", "label_ja": "", "label_en": "x"}, "名前を入力"),
        ({"key": "ok", "label_ja": "a\u2028b", "label_en": "x"}, "改行を含めず"),
        ({"key": "ok", "label_ja": "x" * 61, "label_en": "x"}, "60文字以内"),
        ({"key": "ok", "label_ja": "x", "label_en": "x", "description": "\x1b[31m"}, "改行"),
    ]:
        answer = admin_client.post_form(PAGE, data)
        assert answer.status_code == 422, data
        assert message in answer.text
        assert 'value="x"' in answer.text or data["label_ja"] != "x"  # the form is kept
    assert count() == before


def test_defaults_and_locks_are_saved_from_the_card_and_audited(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    survey = categories.find(tenants["own"], "survey")
    assert survey is not None
    answer = admin_client.post_form(
        f"{PAGE}/{survey.id}",
        {
            "label_ja": "サーベイ",
            "label_en": "Surveys",
            "description": survey.description,
            "email_on": "on",
            "chat_locked": "on",
        },
        headers=HTMX,
    )
    assert answer.status_code == 200 and f'id="category-{survey.id}"' in answer.text
    db.session.refresh(survey)
    assert (survey.chat_on, survey.email_on, survey.chat_locked, survey.email_locked) == (
        False,
        True,
        True,
        False,
    )
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "category.changed"))
    assert event is not None
    assert event.before == {"chat_on": True, "email_on": False, "chat_locked": False}
    assert event.after == {"chat_on": False, "email_on": True, "chat_locked": True}


def test_a_bad_card_saves_nothing_not_even_its_valid_parts(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    goals = categories.find(tenants["own"], "goals")
    assert goals is not None
    answer = admin_client.post_form(
        f"{PAGE}/{goals.id}",
        {"label_ja": "", "label_en": "Goals", "email_on": "on", "email_locked": "on"},
        headers=HTMX,
    )
    assert answer.status_code == 422 and "名前を入力" in answer.text
    db.session.expire_all()
    goals = categories.find(tenants["own"], "goals")
    assert goals is not None and goals.label_ja == "目標"
    assert (goals.email_on, goals.email_locked) == (False, False)


def test_another_organizations_category_is_not_found(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    theirs = categories.default(tenants["other"])
    answer = admin_client.post_form(
        f"{PAGE}/{theirs.id}", {"label_ja": "乗っ取り", "label_en": "x"}
    )
    assert answer.status_code == 404
    db.session.refresh(theirs)
    assert theirs.label_ja == "一般"


def test_the_tool_order_is_saved_whole_or_not_at_all(
    admin_client: Any, tenants: dict[str, Any]
) -> None:
    organization = tenants["own"]
    admin_client.post_form(
        f"{PAGE}/tool-order", {"tool_0": "teams", "tool_1": "teams", "tool_2": "slack"}
    )
    db.session.refresh(organization)
    assert organization.provider_order is None
    admin_client.post_form(
        f"{PAGE}/tool-order", {"tool_0": "teams", "tool_1": "chatwork", "tool_2": "slack"}
    )
    db.session.refresh(organization)
    assert organization.provider_order == ["teams", "chatwork", "slack"]
    assert db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "organization.tool_order_changed")
    )
