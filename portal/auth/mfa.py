"""Second factor: time-based one-time codes (TOTP, RFC 6238) from an authenticator app.

Admins and support staff hold the keys to a company's chat tools (reliability.md PT-45): the
roles in ``MFA_REQUIRED_ROLES`` must enrol before they can use the portal; anybody may enrol.
The secret is stored encrypted and sealed to its user; a code is accepted once (its 30-second
step is remembered) and within one step of the clock either way.
"""

from __future__ import annotations

import hmac
import time

import pyotp
from flask import current_app
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value

from ..accounts.models import User
from ..crypto import SecretUnavailable, seal, unseal
from ..database import utcnow
from ..extensions import db

ISSUER = "Chat Connect"
STEP_SECONDS = 30
#: Steps either side of now a code may belong to: phones drift, people type slowly.
DRIFT_STEPS = 1


def _owner(user: User) -> str:
    return f"user:{user.id}:mfa"


def is_enabled(user: User) -> bool:
    return user.mfa_enabled_at is not None and user.mfa_secret is not None


def is_required(user: User) -> bool:
    """Whether ``user``'s role must sign in with a second factor."""
    roles = current_app.config.get("MFA_REQUIRED_ROLES") or ()
    return user.role.value in roles


def begin_enrollment(user: User) -> str:
    """A new secret for ``user``, not active until a code from it is confirmed; commits.

    Returns the base32 secret, shown once to be typed or scanned into the app.
    """
    secret = pyotp.random_base32()
    user.mfa_secret = seal({"totp": secret}, _owner(user))
    user.mfa_enabled_at = None
    user.mfa_last_step = None
    db.session.commit()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` address authenticator apps accept (typed in, or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def pending_secret(user: User) -> str | None:
    """The secret being set up (shown again when the first code was mistyped)."""
    return None if is_enabled(user) else _secret(user)


def _secret(user: User) -> str | None:
    try:
        value = unseal(user.mfa_secret, _owner(user))
    except SecretUnavailable:
        return None  # fail closed: no code matches an unreadable secret
    return str(value["totp"]) if isinstance(value, dict) and "totp" in value else None


def verify(user: User, code: str, now: float | None = None) -> bool:
    """Whether ``code`` is a fresh code of ``user``'s secret; remembers its step (no commit)."""
    code = "".join(code.split())
    secret = _secret(user)
    if secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step <= (user.mfa_last_step or -1):
            continue  # this code, or an older one, was used already
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return _spend(user, step)
    return False


def _spend(user: User, step: int) -> bool:
    """Record ``step`` as used unless another request already did: a compare-and-swap, so two
    sign-ins racing with one code cannot both pass."""
    spent = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.mfa_last_step.is_(None), User.mfa_last_step < step),
        )
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "mfa_last_step", step)
    return True


def confirm_enrollment(user: User, code: str) -> bool:
    """Turn the pending secret on once the user proves their app shows its codes; commits."""
    if user.mfa_secret is None or not verify(user, code):
        return False
    user.mfa_enabled_at = utcnow()
    db.session.commit()
    return True


def disable(user: User) -> None:
    """Forget the secret (the caller checks a current code first); commits."""
    user.mfa_secret = None
    user.mfa_enabled_at = None
    user.mfa_last_step = None
    db.session.commit()
