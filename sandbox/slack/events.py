"""Signed Events API deliveries to the portal: `app_uninstalled` and `tokens_revoked`.

Slack signs each delivery with the app's signing secret:
`X-Slack-Signature: v0=hex(hmac_sha256(secret, "v0:{timestamp}:{raw body}"))`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

import requests

from sandbox.config import SLACK_APP_ID, SLACK_SIGNING_SECRET, SLACK_VERIFICATION_TOKEN
from sandbox.slack.models import SlackUser, SlackWorkspace
from sandbox.state import SandboxState

DELIVERY_DELAY = 0.2  # seconds; Slack delivers events asynchronously after the API call


def sign(body: bytes, timestamp: int, secret: str = SLACK_SIGNING_SECRET) -> str:
    """The `X-Slack-Signature` value for a body sent at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def app_uninstalled(workspace: SlackWorkspace) -> dict[str, Any]:
    """The `app_uninstalled` event body."""
    return {"type": "app_uninstalled"}


def tokens_revoked(workspace: SlackWorkspace) -> dict[str, Any]:
    """The `tokens_revoked` event: user ids, not token strings."""
    return {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [workspace.bot_user_id]}}


def user_event(kind: str, user: SlackUser) -> dict[str, Any]:
    """``team_join`` (someone joined the workspace) or ``user_change`` (a profile changed, or
    the member was deactivated: ``deleted`` true), with the users.list shape."""
    return {"type": kind, "user": user.to_api(with_email=True), "cache_ts": int(time.time())}


def envelope(team_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """Wrap an event the way the Events API does."""
    return {
        "token": SLACK_VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": SLACK_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(time.time()),
    }


def deliver(state: SandboxState, team_id: str, event: dict[str, Any]) -> int | None:
    """POST one signed event to `<portal-url>/slack/events`; return the portal's status."""
    url = f"{state.settings.portal_url}/slack/events"
    body = json.dumps(envelope(team_id, event)).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(body, timestamp),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if not state.settings.post_to_portal:
        state.record_outbound(f"slack:{event['type']}", url, None, "not sent (post_to_portal off)")
        return None
    try:
        response = requests.post(url, data=body, headers=headers, timeout=5)
    except requests.RequestException as error:
        state.record_outbound(f"slack:{event['type']}", url, None, type(error).__name__)
        return None
    state.record_outbound(f"slack:{event['type']}", url, response.status_code, "")
    return response.status_code


def send_later(state: SandboxState, team_id: str, batch: list[dict[str, Any]]) -> None:
    """Deliver events from a background thread, after the triggering API call has answered."""

    def run() -> None:
        time.sleep(DELIVERY_DELAY)
        for event in batch:
            deliver(state, team_id, event)

    threading.Thread(target=run, name="slack-events", daemon=True).start()


def uninstall(state: SandboxState, team_id: str, *, later: bool = False) -> list[int | None]:
    """Uninstall the app from a workspace: revoke its tokens and send both events.

    Returns the portal's status per event, or [] when `later` defers delivery to a thread.
    """
    with state.lock:
        workspace = state.slack.workspaces[team_id]
        workspace.installed = False
        for token in state.tokens.values():
            if token.provider == "slack" and token.owner == team_id:
                state.revoke_token(token)
        batch = [app_uninstalled(workspace), tokens_revoked(workspace)]
    if later:
        send_later(state, team_id, batch)
        return []
    return [deliver(state, team_id, event) for event in batch]
