"""Slack button presses (``block_actions``) on a DM, acted on once.

:func:`receive` is a service: the view has checked the signature and the schema. It records
the request's signature first (committed, so the same signed request sent again is a replay,
refused), finds the workspace, and hands the press to ``me/actions.press``, which trusts
nothing from the payload. The DM is then replaced through ``response_url`` by a background
task, after the commit, so the answer to Slack stays well inside its 3 seconds; the task
renders the notification as it is then, so running it twice shows the same message.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ....extensions import db
from ....me import actions
from ....notifications.actions import KEYS
from ....tasks import task
from ...models import InboundEvent, Integration, IntegrationState
from ..base import ProviderError
from .client import update_message

log = logging.getLogger("portal.integrations.slack.interactions")

Outcome = Literal["done", "ignored", "unknown_team", "replayed", "refused"]


def receive(payload: dict[str, Any], signature: str) -> Outcome:
    """Act on the first of our buttons in a schema-checked ``block_actions``; commits."""
    integration = db.session.scalar(
        select(Integration).where(
            Integration.provider == "slack",
            Integration.external_id == payload["team"]["id"],
            Integration.state == IntegrationState.CONNECTED,
        )
    )
    if integration is None:
        return "unknown_team"
    digest = hashlib.sha256(signature.encode()).hexdigest()
    db.session.add(InboundEvent(provider="slack", event_id=f"interaction:{digest}"))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "replayed"
    ours = [a for a in payload["actions"] if a["action_id"] in KEYS]
    if not ours:
        return "ignored"  # the "open" link button: Slack wants its 200 all the same
    pressed = ours[0]
    try:
        done = actions.press(
            integration, pressed.get("value", ""), pressed["action_id"], payload["user"]["id"]
        )
    except actions.Refused as problem:
        db.session.rollback()
        log.warning("slack button press refused: %s", problem.reason)
        return "refused"
    update_dm(
        integration.id,
        done.notification.id,
        done.account.id,
        done.outcome,
        payload["response_url"],
    )
    return "done"


@task()
def update_dm(
    integration_id: int, notification_id: int, account_id: int, outcome: str, response_url: str
) -> None:
    """Replace the pressed DM with the notification as it reads now (a line says what was
    done); best effort: the press itself is already recorded."""
    pressed = actions.pressed_again(integration_id, notification_id, account_id, outcome)
    if pressed is None:
        return
    try:
        update_message(response_url, pressed.message())
    except ProviderError as problem:
        log.warning("slack DM not updated: code=%s", problem.code)
