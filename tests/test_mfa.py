"""PT-45: two-step verification (TOTP) — set-up, sign-in with a code, no replay, throttling,
enforcement for the roles that require it, secrets encrypted at rest."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from flask import Flask
from sqlalchemy import select, text

from portal.audit.models import AuditEvent
from portal.auth import mfa
from portal.extensions import db
from tests.conftest import PASSWORD

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def enrolled(user: Any) -> str:
    """Turn two-step verification on for ``user``; return the secret (last step forgotten)."""
    secret = mfa.begin_enrollment(user)
    assert mfa.confirm_enrollment(user, pyotp.TOTP(secret).now())
    user.mfa_last_step = None
    db.session.commit()
    return secret


def password_step(client: Any, user: Any) -> Any:
    token = _CSRF.search(client.get("/login").text)
    assert token
    return client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": user.email, "password": PASSWORD},
    )


def code_step(client: Any, code: str) -> Any:
    token = _CSRF.search(client.get("/login/code").text)
    assert token
    return client.post("/login/code", data={"csrf_token": token.group(1), "code": code})


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_pt45_setup_shows_a_key_once_and_needs_a_code(client: Any, tenants: Any) -> None:
    admin = tenants["admin"]
    client.login(admin)
    page = client.post_form("/me/security/mfa")
    assert page.status_code == 200
    shown = re.search(r'id="security-secret">([A-Z2-7 ]+)<', page.text)
    assert shown
    secret = shown.group(1).replace(" ", "")
    assert "otpauth://totp/" in page.text
    wrong = client.post_form("/me/security/mfa/confirm", {"code": "000000"})
    assert wrong.status_code == 422 and secret.replace(" ", "")[:4] in wrong.text
    assert not mfa.is_enabled(admin)
    right = client.post_form("/me/security/mfa/confirm", {"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 302
    db.session.refresh(admin)
    assert mfa.is_enabled(admin)
    assert "user.mfa_enabled" in actions()
    # The key is never shown again, and is stored encrypted, sealed to this user.
    assert secret not in client.get("/me/security").text
    stored = db.session.execute(
        text("SELECT mfa_secret FROM users WHERE id = :id"), {"id": admin.id}
    ).scalar_one()
    assert stored.startswith("enc:") and secret not in stored


def test_pt45_sign_in_needs_the_code_after_the_password(client: Any, tenants: Any) -> None:
    admin = tenants["admin"]
    secret = enrolled(admin)
    first = password_step(client, admin)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/code")
    # A correct password alone signs nobody in.
    assert client.get("/settings/members").status_code == 302
    assert code_step(client, "123 45x").status_code == 401
    code = pyotp.TOTP(secret).now()
    signed_in = code_step(client, code)
    assert signed_in.status_code == 302
    assert client.get("/settings/members").status_code == 200
    assert actions()[-1] == "user.logged_in"
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.data == {"mfa": True}
    assert "user.mfa_failed" in actions()


def test_pt45_a_code_works_once(app: Flask, tenants: Any) -> None:
    admin = tenants["admin"]
    secret = enrolled(admin)
    code = pyotp.TOTP(secret).now()
    first, second = app.test_client(), app.test_client()
    password_step(first, admin)
    assert code_step(first, code).status_code == 302
    password_step(second, admin)
    assert code_step(second, code).status_code == 401  # replayed (e.g. shoulder-surfed)


def test_pt45_codes_from_the_next_and_last_step_are_accepted(tenants: Any) -> None:
    admin = tenants["admin"]
    secret = enrolled(admin)
    now = time.time()
    totp = pyotp.TOTP(secret)
    assert mfa.verify(admin, totp.at(now - 30), now=now)  # slow typist
    assert not mfa.verify(admin, totp.at(now - 30), now=now)  # and only once
    assert mfa.verify(admin, totp.at(now + 30), now=now)  # phone clock ahead
    assert not mfa.verify(admin, totp.at(now - 90), now=now)  # too old


def test_pt45_wrong_codes_are_throttled(client: Any, tenants: Any) -> None:
    admin = tenants["admin"]
    secret = enrolled(admin)
    password_step(client, admin)
    statuses = [code_step(client, "000000").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    assert code_step(client, pyotp.TOTP(secret).now()).status_code == 429


def test_pt45_the_code_step_expires(client: Any, tenants: Any, monkeypatch: Any) -> None:
    admin = tenants["admin"]
    secret = enrolled(admin)
    password_step(client, admin)
    later = time.time() + 301
    monkeypatch.setattr("portal.auth.views.time.time", lambda: later)
    expired = client.get("/login/code")
    assert expired.status_code == 302 and expired.headers["Location"].endswith("/login")
    assert pyotp.TOTP(secret).now()  # the secret itself stays valid


def test_pt45_required_roles_must_enrol_first(app: Flask, client: Any, tenants: Any) -> None:
    app.config["MFA_REQUIRED_ROLES"] = ("admin", "support")
    client.login(tenants["admin"])
    blocked = client.get("/settings/members")
    assert blocked.status_code == 303 and blocked.headers["Location"].endswith("/me/security")
    region = client.get("/settings/members?page=2", headers={"HX-Request": "true"})
    assert region.status_code == 204 and region.headers["HX-Redirect"].endswith("/me/security")
    page = client.get("/me/security").text
    assert 'id="security-required"' in page
    member: Any = app.test_client()
    member.login(tenants["member"])
    assert member.get("/me/accounts").status_code == 200  # members are not asked
    secret = re.search(
        r'id="security-secret">([A-Z2-7 ]+)<', client.post_form("/me/security/mfa").text
    )
    assert secret
    totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
    client.post_form("/me/security/mfa/confirm", {"code": totp.now()})
    assert client.get("/settings/members").status_code == 200


def test_pt45_turning_it_off_needs_a_current_code(client: Any, tenants: Any) -> None:
    member = tenants["member"]
    secret = enrolled(member)
    password_step(client, member)
    totp = pyotp.TOTP(secret)
    code_step(client, totp.now())
    assert client.post_form("/me/security/mfa/disable", {"code": "000000"}).status_code == 422
    db.session.refresh(member)
    assert mfa.is_enabled(member)
    member.mfa_last_step = None  # the sign-in code's step; the test reuses the same step
    db.session.commit()
    assert client.post_form("/me/security/mfa/disable", {"code": totp.now()}).status_code == 302
    db.session.refresh(member)
    assert not mfa.is_enabled(member) and member.mfa_secret is None
    assert "user.mfa_disabled" in actions()


def test_pt45_operators_reset_a_lost_phone(app: Flask, tenants: Any) -> None:
    admin = tenants["admin"]
    enrolled(admin)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mfa-reset", "Admin@Demo.example"])
    assert result.exit_code == 0, result.output
    db.session.refresh(admin)
    assert not mfa.is_enabled(admin) and admin.mfa_secret is None
    assert "user.mfa_disabled" in actions()
    assert runner.invoke(args=["mfa-reset", "nobody@demo.example"]).exit_code != 0
