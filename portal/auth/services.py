"""Checking credentials: one code path for unknown users and wrong passwords (PT-44)."""

from __future__ import annotations

from flask_login import login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..accounts.models import User
from ..audit import service as audit
from ..extensions import db
from . import sessions, throttle

# Checked when the e-mail is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class Throttled(Exception):
    """Too many failures from this account+IP or IP in the last minute."""


class InvalidCredentials(Exception):
    """Unknown e-mail, wrong password or deactivated account (deliberately not told apart)."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def sign_in(email: str, password: str, ip: str) -> User:
    """Check the credentials and open a server-side session; raise on failure."""
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
    sessions.start(user)
    login_user(user)
    audit.record("user.logged_in", organization=user.organization, actor=user)
    db.session.commit()
    return user


def sign_out(user: User) -> None:
    """End this browser's session on the server, not just in the cookie."""
    audit.record("user.logged_out", organization=user.organization, actor=user)
    sessions.end()
    logout_user()
    db.session.commit()
