"""Slack events, acted on once: find the workspace, drop retries, stop using revoked tokens,
keep the directory current between syncs (``team_join``, ``user_change``).

:func:`receive` is a service: it owns its transactions (the ``event_id`` is committed before
the event is acted on, so a retry racing the first delivery is a duplicate, never a second
run). The view has already checked the signature and the schema of every field read here.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ....extensions import db
from ... import directory, linking, services
from ...models import InboundEvent, Integration
from .client import member_entry

Outcome = Literal["handled", "unknown_team", "duplicate"]


def receive(team_id: str, event_id: str, event: dict[str, Any]) -> Outcome:
    """Record ``event_id`` for the workspace ``team_id`` and act on ``event``; commits."""
    integration = db.session.scalar(
        select(Integration).where(
            Integration.provider == "slack", Integration.external_id == team_id
        )
    )
    if integration is None:
        return "unknown_team"
    db.session.add(InboundEvent(provider="slack", event_id=event_id))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    _act(integration, event)
    return "handled"


def _act(integration: Integration, event: dict[str, Any]) -> None:
    """Act on a schema-checked event: every field read here was validated by the view."""
    kind = event["type"]
    revoked_bots: list[str] = event.get("tokens", {}).get("bot", [])
    if kind == "app_uninstalled":
        services.handle_revoked(integration, "app_uninstalled")
    elif kind == "tokens_revoked" and (integration.config or {}).get("bot_user_id") in revoked_bots:
        services.handle_revoked(integration, "tokens_revoked")
    elif kind in ("team_join", "user_change"):
        _person(integration, event["user"])


def _person(integration: Integration, user: dict[str, Any]) -> None:
    """A new hire is stored and, under automatic linking, linked by e-mail; a leaver's link is
    flagged; a changed profile is refreshed (and may now match by e-mail). Commits."""
    entry = member_entry(user)
    if entry is None:
        if user.get("deleted"):
            directory.account_left(integration, str(user["id"]))
            db.session.commit()
        return
    account = directory.store_entry(integration, entry)
    db.session.commit()
    linking.link_by_email(integration, account)
