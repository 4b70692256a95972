"""Sign-in throttling: more than N failures a minute per account+IP, or per IP, answers 429.

Counts live in the database so every web process sees the same numbers. Throttling by account
*and* IP means an attacker cannot lock the real user out from another address (PT-40).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from ..accounts.models import LoginFailure
from ..database import utcnow
from ..extensions import db

WINDOW = timedelta(minutes=1)


def is_throttled(email: str, ip: str) -> bool:
    """Whether this account+IP, or this IP alone, already used up its failures for the minute."""
    since = utcnow() - WINDOW
    per_pair = db.session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.email == email, LoginFailure.ip == ip, LoginFailure.at >= since)
    )
    per_ip = db.session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.ip == ip, LoginFailure.at >= since)
    )
    config = current_app.config
    return bool(
        (per_pair or 0) >= config["LOGIN_FAILURES_PER_MINUTE"]
        or (per_ip or 0) >= config["LOGIN_FAILURES_PER_IP_PER_MINUTE"]
    )


def record_failure(email: str, ip: str) -> None:
    """Remember one failure and forget those older than the window (the caller commits)."""
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - 5 * WINDOW))
    db.session.add(LoginFailure(email=email, ip=ip))
