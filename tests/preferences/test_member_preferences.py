"""「通知の受け取り設定」 (issue 16 item 3): a member chooses per category where the company
allows, and which tool when linked on several; a locked category is shown as required and
refused if forged; one bad choice saves none of the form; the preview says where the next one
goes; the API's category and urgent reach the route."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.notifications.models import Delivery, DeliveryState, Notification
from portal.notifications.routing import route
from portal.preferences import categories
from portal.preferences.models import MemberPreference
from tests.notifications.helpers import post_notification

PAGE = "/me/preferences"


def ids(tenants: dict[str, Any]) -> dict[str, int]:
    return {c.key: c.id for c in categories.all_for(tenants["own"])}


def lock(tenants: dict[str, Any], key: str, **rule: bool) -> None:
    category = categories.find(tenants["own"], key)
    assert category is not None
    for name, value in rule.items():
        setattr(category, name, value)
    db.session.commit()


def test_a_member_chooses_per_category_and_the_route_follows(
    member_client: Any, tenants: dict[str, Any], two_tools: dict[str, Any]
) -> None:
    member = tenants["member"]
    page = member_client.get(PAGE)
    assert page.status_code == 200
    assert "フィードバック" in page.text and "SlackのDM" in page.text
    by_key = ids(tenants)
    answer = member_client.post_form(
        PAGE, {f"category_{by_key['feedback']}": "email", f"category_{by_key['goals']}": "off"}
    )
    assert answer.status_code == 302
    feedback = categories.find(tenants["own"], "feedback")
    goals = categories.find(tenants["own"], "goals")
    assert route(member, feedback).channel == "email"
    assert route(member, goals).off
    assert route(member).channel == "slack"  # general: untouched
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "member.preferences_changed")
    )
    assert event is not None and event.after == {"tool": None, "feedback": "email", "goals": "off"}
    # Back to the company's default: the stored choice goes away.
    member_client.post_form(PAGE, {f"category_{by_key['feedback']}": "default"})
    assert route(member, feedback).channel == "slack"


def test_a_locked_category_is_required_and_one_bad_choice_saves_nothing(
    member_client: Any, tenants: dict[str, Any], two_tools: dict[str, Any]
) -> None:
    lock(tenants, "one_on_one", chat_locked=True)
    page = member_client.get(PAGE)
    assert "会社で必須" in page.text
    by_key = ids(tenants)
    answer = member_client.post_form(
        PAGE,
        {
            f"category_{by_key['feedback']}": "email",  # valid on its own
            f"category_{by_key['one_on_one']}": "off",  # chat is locked on
        },
    )
    assert answer.status_code == 422 and "会社で必須のため" in answer.text
    assert db.session.scalar(select(func.count()).select_from(MemberPreference)) == 0
    # "Both" keeps the locked chat on, so it is allowed.
    ok = member_client.post_form(PAGE, {f"category_{by_key['one_on_one']}": "both"})
    assert ok.status_code == 302
    one_on_one = categories.find(tenants["own"], "one_on_one")
    assert one_on_one is not None
    chosen = route(tenants["member"], one_on_one)
    assert chosen.channel == "slack" and chosen.also_email


def test_unknown_options_categories_and_tools_are_refused(
    member_client: Any, tenants: dict[str, Any], two_tools: dict[str, Any]
) -> None:
    by_key = ids(tenants)
    theirs = categories.default(tenants["other"])
    for data in (
        {f"category_{by_key['goals']}": "sms"},
        {f"category_{theirs.id}": "off"},
        {"tool": "teams"},  # not linked there
    ):
        assert member_client.post_form(PAGE, data).status_code == 422, data
    assert db.session.scalar(select(func.count()).select_from(MemberPreference)) == 0


def test_the_member_picks_the_tool_and_the_company_sets_the_order(
    member_client: Any, tenants: dict[str, Any], two_tools: dict[str, Any]
) -> None:
    member = tenants["member"]
    assert route(member).channel == "slack"  # registry order: Slack, Chatwork, Teams
    tenants["own"].provider_order = ["chatwork", "slack", "teams"]
    db.session.commit()
    assert route(member).channel == "chatwork"
    assert 'id="my-tool"' in member_client.get(PAGE).text
    member_client.post_form(PAGE, {"tool": "slack"})
    db.session.refresh(member)
    assert member.preferred_provider == "slack" and route(member).channel == "slack"


def test_members_cannot_choose_when_the_company_decides(
    member_client: Any, tenants: dict[str, Any]
) -> None:
    tenants["own"].allow_channel_choice = False
    db.session.commit()
    page = member_client.get(PAGE)
    assert page.status_code == 200 and 'type="radio"' not in page.text
    by_key = ids(tenants)
    assert member_client.post_form(PAGE, {f"category_{by_key['goals']}": "off"}).status_code == 403


def test_the_api_sends_in_a_category_and_a_turned_off_one_is_skipped_with_its_reason(
    client: Any,
    tenants: dict[str, Any],
    api_key: str,
    member_client: Any,
) -> None:
    by_key = ids(tenants)
    member_client.post_form(PAGE, {f"category_{by_key['survey']}": "off"})
    answer = post_notification(
        client, api_key, recipient_email="member@demo.example", category="survey", urgent=True
    )
    assert answer.status_code == 202
    body = answer.get_json()
    assert body["category"] == "survey" and body["urgent"] is True
    assert [(d["state"], d["reason"]) for d in body["deliveries"]] == [("skipped", "member_off")]
    plain = post_notification(client, api_key, recipient_email="member@demo.example")
    assert plain.get_json()["category"] == "general"
    assert plain.get_json()["deliveries"][0]["state"] == "pending"
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.state == DeliveryState.SKIPPED)
        )
        == 1
    )
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 2


def test_the_api_refuses_unknown_categories_and_non_boolean_urgent(
    client: Any,
    tenants: dict[str, Any],
    api_key: str,
) -> None:
    unknown = post_notification(
        client, api_key, recipient_email="member@demo.example", category="x"
    )
    assert unknown.status_code == 422
    body = unknown.get_json()
    assert body["error"] == "unknown_category"
    assert body["known_categories"] == ["general", "one_on_one", "feedback", "goals", "survey"]
    for payload in ({"category": 7}, {"urgent": "yes"}, {"urgent": 1}, {"category": "x" * 5000}):
        answer = post_notification(
            client, api_key, recipient_email="member@demo.example", **payload
        )
        assert answer.status_code in (400, 422), payload
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_the_api_lists_and_creates_categories(
    client: Any,
    tenants: dict[str, Any],
    api_key: str,
) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    listed = client.get("/api/v1/categories", headers=auth).get_json()["categories"]
    assert [c["key"] for c in listed][:2] == ["general", "one_on_one"]
    assert listed[0]["defaults"] == {"chat": True, "email": False}
    new = {"key": "pulse", "label_ja": "パルス", "label_en": "Pulse"}
    created = client.post("/api/v1/categories", json=new, headers=auth)
    assert created.status_code == 201 and created.get_json()["key"] == "pulse"
    again = client.post("/api/v1/categories", json=new, headers=auth)
    assert again.status_code == 409 and again.get_json()["error"] == "category_exists"
    bad = client.post("/api/v1/categories", json={**new, "key": "Pulse!"}, headers=auth)
    assert bad.status_code == 400 and "lower-case" in bad.get_json()["detail"]
    sent = post_notification(
        client, api_key, recipient_email="member@demo.example", category="pulse"
    )
    assert sent.status_code == 202


def test_support_sees_where_each_kind_goes_for_a_member(
    app: Any, tenants: dict[str, Any], member_client: Any, two_tools: dict[str, Any]
) -> None:
    by_key = ids(tenants)
    member_client.post_form(PAGE, {f"category_{by_key['survey']}": "off"})
    lock(tenants, "one_on_one", chat_locked=True)
    staff = app.test_client()
    staff.login(tenants["support"])
    page = staff.get(f"/support/members/{tenants['member'].id}?org=demo").text
    assert 'id="support-routes"' in page
    assert "送信しません（メンバーがこのカテゴリをオフにしています）" in page
    assert "会社が変更を禁止" in page and "SlackのDM" in page
