"""Checking credentials: one code path for unknown users and wrong passwords (PT-44)."""

from __future__ import annotations

from flask_login import login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..accounts.models import User
from ..audit import service as audit
from ..extensions import db
from . import mfa, sessions, throttle

# Checked when the e-mail is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class Throttled(Exception):
    """Too many failures from this account+IP or IP in the last minute."""


class InvalidCredentials(Exception):
    """Unknown e-mail, wrong password or deactivated account (deliberately not told apart)."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_credentials(email: str, password: str, ip: str) -> User:
    """The user these credentials belong to; raise (and audit) on failure. Opens no session."""
    email = normalise_email(email)
    if throttle.is_throttled(email, ip):
        audit.record("user.login_throttled", data={"email": email})
        db.session.commit()
        raise Throttled()
    user = db.session.scalar(select(User).filter_by(email=email))
    valid = check_password_hash(
        user.password_hash if user and user.password_hash else _DUMMY_HASH, password
    )
    if user is None or not valid or not user.is_active:
        throttle.record_failure(email, ip)
        audit.record(
            "user.login_failed",
            organization=user.organization if user else None,
            data={"email": email},
        )
        db.session.commit()
        raise InvalidCredentials()
    return user


def check_code(user: User, code: str, ip: str) -> None:
    """The second step: a fresh code from ``user``'s authenticator; raise (and audit) if not.

    Failures count against the same per-minute limits as passwords, keyed on the account.
    """
    key = f"mfa:{user.id}"
    if throttle.is_throttled(key, ip):
        audit.record("user.login_throttled", organization=user.organization, actor=user)
        db.session.commit()
        raise Throttled()
    if not user.is_active or not mfa.verify(user, code):
        throttle.record_failure(key, ip)
        audit.record("user.mfa_failed", organization=user.organization, actor=user)
        db.session.commit()
        raise InvalidCredentials()


def open_session(user: User, *, second_factor: bool = False) -> None:
    """Sign ``user`` in: a new server-side session, audited; commits."""
    sessions.start(user)
    login_user(user)
    audit.record(
        "user.logged_in",
        organization=user.organization,
        actor=user,
        data={"mfa": True} if second_factor else None,
    )
    db.session.commit()


def sign_out(user: User) -> None:
    """End this browser's session on the server, not just in the cookie."""
    audit.record("user.logged_out", organization=user.organization, actor=user)
    sessions.end()
    logout_user()
    db.session.commit()
