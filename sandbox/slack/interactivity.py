"""Slack interactivity: a person presses a button of a DM, Slack tells the app, and the app
replaces the message through the press's ``response_url``.

:func:`press` POSTs a signed ``block_actions`` (form field ``payload``, signed like events:
`v0=hex(hmac_sha256(secret, "v0:{timestamp}:{raw body}"))`) to
``<portal-url>/slack/interactions``; its ``response_url`` points at this blueprint
(``POST /slack/hooks/actions/<team>/<ts>``), which stores the replacement, so the inspector
shows the DM as the portal updated it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.slack.api import SlackError, parse_blocks
from sandbox.slack.events import sign
from sandbox.slack.models import SlackMessage, SlackWorkspace
from sandbox.state import SandboxState, current_state

bp = Blueprint("slack_hooks", __name__, url_prefix="/slack/hooks")


def buttons(blocks: list[Any] | None) -> list[dict[str, Any]]:
    """The pressable buttons of a message (those with a value; URL buttons only open a link)."""
    found = []
    for block in blocks or []:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements") or []:
                if (
                    isinstance(element, dict)
                    and element.get("type") == "button"
                    and "value" in element
                    and not element.get("url")
                ):
                    found.append(element)
    return found


def _find(state: SandboxState, team_id: str, ts: str) -> tuple[SlackWorkspace, SlackMessage]:
    workspace = state.slack.workspaces.get(team_id)
    message = next((m for m in workspace.messages if m.ts == ts), None) if workspace else None
    if workspace is None or message is None:
        raise LookupError(f"no Slack message {ts} in {team_id}")
    return workspace, message


def block_actions(
    state: SandboxState, workspace: SlackWorkspace, message: SlackMessage, button: dict[str, Any]
) -> dict[str, Any]:
    """The ``block_actions`` payload Slack sends for one press."""
    user = workspace.by_id[message.user_id]
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "team_id": workspace.team_id},
        "api_app_id": "A0SANDBOX",
        "token": "sandbox-verification-token",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "trigger_id": f"{int(time.time())}.{secrets.token_hex(6)}",
        "team": {"id": workspace.team_id, "domain": workspace.team_id.lower()},
        "channel": {"id": message.channel, "name": "directmessage"},
        "message": {"type": "message", "ts": message.ts, "text": message.text},
        "response_url": (
            f"{state.settings.https_url}/slack/hooks/actions/{workspace.team_id}/{message.ts}"
        ),
        "actions": [
            {
                "type": "button",
                "block_id": "dm_actions",
                "action_id": button["action_id"],
                "value": button.get("value", ""),
                "text": button.get("text"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def press(state: SandboxState, team_id: str, ts: str, action_id: str) -> int | None:
    """The DM's recipient presses the button ``action_id``; return the portal's status."""
    with state.lock:
        workspace, message = _find(state, team_id, ts)
        button = next((b for b in buttons(message.blocks) if b["action_id"] == action_id), None)
        if button is None:
            raise LookupError(f"no button {action_id!r} on this message")
        payload = block_actions(state, workspace, message, button)
    url = f"{state.settings.portal_url}/slack/interactions"
    body = urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(body, timestamp),
    }
    try:
        response = requests.post(url, data=body, headers=headers, timeout=5)
    except requests.RequestException as error:
        state.record_outbound("slack:block_actions", url, None, type(error).__name__)
        return None
    state.record_outbound("slack:block_actions", url, response.status_code, "")
    return response.status_code


@bp.post("/actions/<team_id>/<ts>")
def respond(team_id: str, ts: str) -> Response | tuple[Response, int]:
    """A ``response_url``: ``replace_original`` swaps the DM's text and blocks."""
    state = current_state()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(ok=False, error="invalid_payload"), 400
    with state.lock:
        try:
            _workspace, message = _find(state, team_id, ts)
        except LookupError:
            return jsonify(ok=False, error="expired_url"), 404
        if body.get("replace_original"):
            try:
                blocks = parse_blocks(body.get("blocks"))
            except SlackError:
                return jsonify(ok=False, error="invalid_blocks"), 400
            message.text, message.blocks = str(body.get("text") or ""), blocks
    return jsonify(ok=True)
