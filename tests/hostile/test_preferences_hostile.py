"""Hostile input on the forms of issue 16: a member's preferences and hours, an admin's
category card, new category and working hours. Any field name or value — control
characters, lone surrogates, integers past 64 bits, 25:00, made-up zones — answers below 500,
and a post answered 4xx leaves every row as it was (nothing half-saved). (The hours and tool
order forms answer a refusal with a redirect and a message; their all-or-nothing is tested in
tests/preferences.)"""

from __future__ import annotations

from typing import Any

from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.preferences import categories
from tests.hostile.strategies import huge_ints, nasty_text

VALUES = (
    nasty_text
    | huge_ints.map(str)
    | st.sampled_from(
        ["25:00", "09:00", "daily", "weekly", "company", "off", "both", "0", "8", "Mars/Olympus"]
    )
)
MEMBER_FIELDS = st.sampled_from(
    ["tool", "time_zone", "work_start", "work_end", "category_1", "category_99999999999999999999",
     "c1_digest", "c1_digest_time", "c1_digest_weekday", "c-5_digest", "category_"]
)  # fmt: skip
ADMIN_FIELDS = st.sampled_from(
    ["key", "label_ja", "label_en", "description", "chat_on", "email_locked", "digest",
     "digest_time", "digest_weekday", "quiet_hours_on", "time_zone", "work_days", "work_start",
     "work_end", "tool_0", "tool_1", "tool_2"]
)  # fmt: skip
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def snapshot(tenants: dict[str, Any]) -> list[object]:
    """Every value these forms can change."""
    db.session.expire_all()
    organization, member = tenants["own"], tenants["member"]
    rows = [
        (c.key, c.label_ja, c.label_en, c.description, c.chat_on, c.email_on, c.chat_locked,
         c.email_locked, c.digest, c.digest_time, c.digest_weekday)
        for c in categories.all_for(organization)
    ]  # fmt: skip
    return [
        rows,
        organization.quiet_hours_on,
        organization.time_zone,
        organization.work_days,
        organization.work_start,
        organization.work_end,
        organization.provider_order,
        member.time_zone,
        member.work_start,
        member.work_end,
        member.preferred_provider,
    ]


def post(client: Any, path: str, form: dict[str, str]) -> Any:
    data = {"csrf_token": client.csrf_token(), **form}
    return client.post(path, data={k: v.encode("utf-8", "surrogatepass") for k, v in data.items()})


@SETTINGS
@given(form=st.dictionaries(MEMBER_FIELDS, VALUES, max_size=6))
@example(form={"category_1": "\x00", "c1_digest": "daily", "c1_digest_time": "25:00"})
@example(form={"time_zone": "\ud800", "work_start": "9" * 30, "work_end": "10:00"})
def test_member_forms_never_fail(app: Flask, tenants: dict[str, Any], form: dict[str, str]) -> None:
    client = app.test_client()
    client.login(tenants["member"])  # type: ignore[attr-defined]
    for path in ("/me/preferences", "/me/preferences/hours"):
        before = snapshot(tenants)
        response = post(client, path, form)
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code >= 400:
            assert snapshot(tenants) == before, path


@SETTINGS
@given(form=st.dictionaries(ADMIN_FIELDS, VALUES, max_size=8))
@example(form={"label_ja": "\u2028", "label_en": "x", "digest": "weekly", "digest_weekday": "9"})
@example(form={"key": "k" * 5000, "label_ja": "a", "label_en": "b"})
def test_admin_forms_never_fail(app: Flask, tenants: dict[str, Any], form: dict[str, str]) -> None:
    client = app.test_client()
    client.login(tenants["admin"])  # type: ignore[attr-defined]
    general = categories.default(tenants["own"]).id
    db.session.commit()
    for path in (
        f"/settings/notification-categories/{general}",
        "/settings/notification-categories",
        "/settings/notification-categories/tool-order",
        "/settings/notification-policy/hours",
    ):
        before = snapshot(tenants)
        response = post(client, path, form)
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code >= 400:
            assert snapshot(tenants) == before, path
