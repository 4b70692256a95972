"""Sign-in, server-side sessions, throttling, CSRF, bad input (PT-01…04, PT-20, PT-40…44)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import select

from portal.accounts import services
from portal.accounts.models import LoginFailure, UserSession
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db


def login_form(client: Any, email: str, password: str, ip: str = "10.0.0.1") -> Any:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_login_success_creates_server_side_session(client: Any, tenants: dict[str, Any]) -> None:
    response = login_form(client, "ADMIN@demo.example ", "correct horse battery")
    assert response.status_code == 302
    assert db.session.scalar(select(db.func.count()).select_from(UserSession)) == 1
    assert client.get("/settings/integrations").status_code == 200
    assert db.session.scalars(select(AuditEvent.action)).all()[-1] == "user.logged_in"


def test_wrong_password_and_unknown_user_look_the_same(
    client: Any, tenants: dict[str, Any]
) -> None:
    """PT-44: same message and status for an unknown e-mail and a wrong password."""
    wrong = login_form(client, "admin@demo.example", "nope")
    unknown = login_form(client, "nobody@demo.example", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません" in wrong.text
    assert "メールアドレスまたはパスワードが正しくありません" in unknown.text


def test_pt01_new_session_identifier_on_login(client: Any, tenants: dict[str, Any]) -> None:
    client.get("/login")
    before = client.get_cookie("session").value
    client.login(tenants["admin"])
    assert client.get_cookie("session").value != before


def test_pt02_copied_cookie_stops_working_after_logout(
    app: Any, client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    stolen = client.get_cookie("session").value
    client.post_form("/logout")
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/settings/integrations")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_pt03_deactivation_ends_live_sessions(client: Any, tenants: dict[str, Any]) -> None:
    member = tenants["member"]
    client.login(member)
    assert client.get("/me/accounts").status_code == 200
    services.deactivate_user(member)
    assert client.get("/me/accounts").status_code == 302
    assert login_form(client, member.email, "correct horse battery").status_code == 401


def test_admin_deactivates_member_through_the_page(
    app: Any, client: Any, tenants: dict[str, Any]
) -> None:
    member = tenants["member"]
    member_browser = app.test_client()
    member_browser.login(member)
    client.login(tenants["admin"])
    response = client.post_form(f"/settings/members/{member.id}/deactivate")
    assert response.status_code == 302
    db.session.refresh(member)
    assert member.is_active is False
    assert member_browser.get("/me/accounts").status_code == 302
    event = db.session.scalars(select(AuditEvent).filter_by(action="user.deactivated")).one()
    assert event.before == {"active": True} and event.after == {"active": False}


def test_pt04_idle_and_absolute_timeouts(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    with time_machine.travel(utcnow() + timedelta(minutes=31), tick=False):
        assert client.get("/settings/integrations").status_code == 302


def test_pt04_absolute_timeout_even_when_active(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    start = utcnow()
    # Active every 20 minutes for 12 hours: the idle limit never triggers, the absolute one does.
    for minutes in range(20, 12 * 60, 20):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert client.get("/settings/integrations").status_code == 200
    with time_machine.travel(start + timedelta(hours=12, minutes=1), tick=False):
        assert client.get("/settings/integrations").status_code == 302


def test_pt40_throttled_after_five_failures_per_account_and_ip(
    client: Any, tenants: dict[str, Any]
) -> None:
    for _ in range(5):
        assert login_form(client, "admin@demo.example", "wrong").status_code == 401
    throttled = login_form(client, "admin@demo.example", "correct horse battery")
    assert throttled.status_code == 429
    assert "1分ほど待って" in throttled.text
    # The real user from another address is not locked out.
    assert (
        login_form(client, "admin@demo.example", "correct horse battery", ip="10.0.0.2").status_code
        == 302
    )


def test_pt40_throttle_lifts_after_a_minute(client: Any, tenants: dict[str, Any]) -> None:
    for _ in range(6):
        login_form(client, "admin@demo.example", "wrong")
    with time_machine.travel(utcnow() + timedelta(seconds=61), tick=False):
        assert login_form(client, "admin@demo.example", "correct horse battery").status_code == 302


def test_pt41_per_ip_limit_against_credential_stuffing(
    client: Any, tenants: dict[str, Any]
) -> None:
    for n in range(30):
        login_form(client, f"victim{n}@demo.example", "guess")
    assert login_form(client, "admin@demo.example", "correct horse battery").status_code == 429
    assert db.session.scalar(select(db.func.count()).select_from(LoginFailure)) == 30


def test_pt20_post_without_or_with_foreign_csrf_token_is_refused(
    app: Any, client: Any, tenants: dict[str, Any]
) -> None:
    member = tenants["member"]
    client.login(tenants["admin"])
    assert client.post(f"/settings/members/{member.id}/deactivate").status_code == 400
    other = app.test_client()
    other.login(tenants["other_admin"])
    foreign = other.csrf_token()
    response = client.post(
        f"/settings/members/{member.id}/deactivate", data={"csrf_token": foreign}
    )
    assert response.status_code == 400
    db.session.refresh(member)
    assert member.is_active


def test_csrf_header_accepted_for_htmx(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    response = client.post(
        "/language",
        data={"locale": "en"},
        headers={"X-CSRFToken": client.csrf_token(), "HX-Request": "true"},
    )
    assert response.status_code == 302


def test_pt21_state_change_by_get_is_not_allowed(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    assert client.get(f"/settings/members/{tenants['member'].id}/deactivate").status_code == 405


def test_oa13_open_redirect_after_login_is_ignored(client: Any, tenants: dict[str, Any]) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        client.post_form("/logout") if client.get_cookie("session") else None
        page = client.get(f"/login?next={target}")
        token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        response = client.post(
            f"/login?next={target}",
            data={
                "csrf_token": token,
                "email": "admin@demo.example",
                "password": "correct horse battery",
            },
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/"


def test_bad_input_gets_clear_answers(client: Any, tenants: dict[str, Any]) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    long = client.post("/login", data={"csrf_token": token, "email": "a" * 10_000, "password": "x"})
    assert long.status_code == 422
    raw = client.post(
        "/login",
        data=b"csrf_token=" + token.encode() + b"&email=\xff\xfe%ff&password=\xc3\x28",
        content_type="application/x-www-form-urlencoded",
    )
    assert raw.status_code in (400, 401, 422)
    assert '<section class="card narrow' in raw.text  # a page with a message, not a traceback
    client.login(tenants["admin"])
    for page_number in ("-1", "abc", "0", "99999999999"):
        response = client.get(f"/settings/members?page={page_number}")
        assert response.status_code == 400
        assert "ページ番号" in response.text
    assert client.get("/audit?before=abc").status_code == 400
    assert client.get("/audit?from=yesterday").status_code == 400
    assert client.get("/audit?action=nope").status_code == 400


def test_long_search_is_cut_not_refused(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    assert client.get("/settings/members?q=" + "佐" * 10_000).status_code == 200
