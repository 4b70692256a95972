"""Writing audit events. Services call :func:`record` inside their own transaction."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user

from ..accounts.models import Organization, User
from ..extensions import db
from .events import ACTIONS
from .models import AuditEvent

#: Keys never written to the log, whatever a caller passes in before/after/data.
SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret",
        "secrets",
        "api_key",
        "key",
        "code",
        "code_verifier",
        "state",
    }
)

Target = tuple[str, str | int, str | None]


def scrub(value: Any) -> Any:
    """Drop secret-looking keys at any depth, so a careless caller cannot log a token."""
    if isinstance(value, dict):
        return {k: ("[redacted]" if k in SECRET_KEYS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def record(
    action: str,
    *,
    organization: Organization | None = None,
    actor: User | None = None,
    target: Target | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits with its change).

    ``actor`` defaults to the signed-in user; pass ``actor=None`` from workers, where there is
    none. ``target`` is ``(type, id, label)``.
    """
    if action not in ACTIONS:
        raise KeyError(f"unregistered audit action {action!r}")
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    event = AuditEvent(
        action=action,
        kind=ACTIONS[action].kind,
        organization_id=organization.id if organization else None,
        actor_id=actor.id if actor else None,
        actor_label=actor.email if actor else None,
        target_type=target[0] if target else None,
        target_id=str(target[1]) if target else None,
        target_label=(target[2] or None) if target else None,
        before=scrub(before),
        after=scrub(after),
        data=scrub(data),
    )
    if has_request_context():
        event.ip = request.remote_addr
        event.request_id = g.get("request_id")
    db.session.add(event)
    return event


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, as ``before`` and ``after`` of a change's event."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}
