"""Server-side sessions on top of Flask's signed cookie.

Flask's cookie session is signed, not stored: a copied cookie would outlive logout. So the cookie
carries only a random session id, and :class:`UserSession` rows decide whether it still counts.
Logout deletes the row, deactivation deletes all of the user's rows, and idle (30 min) and
absolute (12 h) limits are checked on every request (reliability.md PT-01…PT-04).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app, request, session
from sqlalchemy import delete, select

from ..accounts.models import User, UserSession
from ..database import utcnow
from ..extensions import db, login_manager

SESSION_KEY = "sid"
#: Writing last_seen_at on every request would make each page view a write; a minute is enough
#: precision for a 30-minute idle limit.
TOUCH_INTERVAL = timedelta(minutes=1)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start(user: User) -> None:
    """Open a new server-side session for ``user`` (the caller commits)."""
    session.clear()  # a fresh identifier on login: nothing from before sign-in survives
    sid = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            id_hash=_hash(sid),
            user_id=user.id,
            ip=request.remote_addr,
            user_agent=(request.user_agent.string or "")[:255],
        )
    )
    session[SESSION_KEY] = sid
    session.permanent = True


def end() -> None:
    """Delete this browser's session row and clear the cookie (the caller commits)."""
    sid = session.get(SESSION_KEY)
    if sid:
        db.session.execute(delete(UserSession).where(UserSession.id_hash == _hash(sid)))
    session.clear()


def end_all(user: User) -> None:
    """Sign ``user`` out everywhere, e.g. on deactivation (the caller commits)."""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def current_hash() -> str | None:
    """The hashed id of this browser's session, used to bind OAuth state to it."""
    sid = session.get(SESSION_KEY)
    return _hash(sid) if sid else None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login hook: accept the cookie only while its server-side session is alive."""
    sid = session.get(SESSION_KEY)
    if not sid:
        return None
    # One query for the session and its user: this runs on every request.
    row = (
        db.session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.id_hash == _hash(sid))
        )
        .tuples()
        .first()
    )
    if row is None:
        return None
    record, user = row
    if str(record.user_id) != user_id:
        return None
    now = utcnow()
    config = current_app.config
    if (
        now - record.last_seen_at > config["SESSION_IDLE_TIMEOUT"]
        or now - record.created_at > config["SESSION_ABSOLUTE_TIMEOUT"]
    ):
        db.session.delete(record)
        db.session.commit()
        return None
    if not user.is_active:
        return None
    if now - record.last_seen_at > TOUCH_INTERVAL:
        record.last_seen_at = now
        db.session.commit()
    return user
