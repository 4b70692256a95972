"""The inspector: what each sandbox user received, tokens, the request log, faults and actions.

Plain server-rendered HTML with Japanese labels; every button posts a form to `/inspector/…`
and comes back to the tab it was pressed on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from sandbox import actions
from sandbox.chatwork.www import REGISTRATION_PATH
from sandbox.microsoft.teams import card_actions
from sandbox.slack.interactivity import buttons as slack_buttons
from sandbox.state import SandboxState, current_state

bp = Blueprint("inspector", __name__)

TABS = (
    ("slack", "Slack"),
    ("chatwork", "Chatwork"),
    ("microsoft", "Microsoft Teams"),
    ("mail", "メール"),
    ("tokens", "トークン"),
    ("log", "リクエストログ"),
    ("faults", "障害の注入・設定"),
)


def block_lines(blocks: list[Any] | None) -> list[str]:
    """Readable lines from Block Kit blocks (header, section, context texts)."""
    lines: list[str] = []
    for block in blocks or []:
        if not isinstance(block, dict) or block.get("type") == "actions":
            continue  # buttons are drawn as buttons (or a link)
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            lines.append(str(text["text"]))
        for item in block.get("fields") or block.get("elements") or []:
            if isinstance(item, dict) and isinstance(item.get("text"), str | dict):
                value = item["text"]
                lines.append(str(value.get("text", "")) if isinstance(value, dict) else value)
    return [line for line in lines if line]


def _slack_view(state: SandboxState) -> list[dict[str, Any]]:
    result = []
    for ws in state.slack.workspaces.values():
        inbox: dict[str, list[Any]] = {}
        for message in ws.messages:
            inbox.setdefault(message.user_id, []).append(message)
        result.append(
            {"workspace": ws, "inbox": [(ws.by_id[u], msgs) for u, msgs in inbox.items()]}
        )
    return result


def _chatwork_view(state: SandboxState) -> dict[str, Any]:
    data = state.chatwork
    rooms = []
    for room in data.rooms.values():
        if room.messages:
            names = [data.accounts[a] for a in sorted(room.members)]
            rooms.append({"room": room, "members": names})
    pending = [
        (r, data.accounts[r.from_id], data.accounts[r.to_id]) for r in data.requests.values()
    ]
    logins = [a for a in data.accounts.values() if a.can_login]
    return {
        "rooms": rooms,
        "pending": pending,
        "clients": list(data.clients.values()),
        "logins": logins,
    }


def _microsoft_view(state: SandboxState) -> list[dict[str, Any]]:
    result = []
    for tenant in state.microsoft.tenants.values():
        activities: dict[str, list[Any]] = {}
        for activity in state.microsoft.activities:
            if activity.tenant_id == tenant.tenant_id:
                activities.setdefault(activity.user_id, []).append(activity)
        result.append(
            {"tenant": tenant, "activities": activities, "small": len(tenant.users) <= 200}
        )
    return result


@bp.get("/")
def index() -> str:
    """The inspector page."""
    state = current_state()
    tab = request.args.get("tab", "slack")
    with state.lock:
        context: dict[str, Any] = {
            "tab": tab,
            "tabs": TABS,
            "settings": state.settings,
            "registration_url": url_for("chatwork_www.client_create"),
            "registration_path": REGISTRATION_PATH,
        }
        if tab == "slack":
            context["slack"] = _slack_view(state)
        elif tab == "chatwork":
            context["chatwork"] = _chatwork_view(state)
        elif tab == "microsoft":
            context["microsoft"] = _microsoft_view(state)
        elif tab == "mail":
            context["inboxes"] = state.mail.inboxes()
        elif tab == "tokens":
            context["tokens"] = sorted(state.tokens.values(), key=lambda t: -t.id)
        elif tab == "log":
            context["requests"] = list(state.requests)[:300]
            context["counts"] = sorted(state.request_counts.items())
            context["outbound"] = list(state.outbound)[:100]
        else:
            context["faults"] = list(state.faults)
    return render_template(
        "inspector.html",
        block_lines=block_lines,
        slack_buttons=slack_buttons,
        card_actions=card_actions,
        **context,
    )


def _back(tab: str) -> Response:
    return redirect(url_for(".index", tab=tab), code=303)


ACTIONS: dict[str, tuple[str, Callable[[SandboxState, Any], object]]] = {
    "slack-uninstall": ("slack", lambda s, f: actions.slack_uninstall(s, f["team_id"])),
    "slack-press": (
        "slack",
        lambda s, f: actions.slack_press(s, f["team_id"], f["ts"], f["action_id"]),
    ),
    "teams-press": ("microsoft", lambda s, f: actions.teams_press(s, f["activity_id"], f["verb"])),
    "teams-add": ("microsoft", lambda s, f: actions.teams_add_bot(s, f["user"], f["tenant_id"])),
    "teams-remove": (
        "microsoft",
        lambda s, f: actions.teams_remove_bot(s, f["user"], f["tenant_id"]),
    ),
    "microsoft-consent": ("microsoft", lambda s, f: actions.consent(s, f["tenant_id"])),
    "chatwork-accept": (
        "chatwork",
        lambda s, f: actions.accept_contact_request(s, int(f["request_id"])),
    ),
    "revoke-token": ("tokens", lambda s, f: actions.revoke(s, token_id=int(f["token_id"]))),
    "deactivate-user": (
        "faults",
        lambda s, f: actions.deactivate_user(s, f["provider"], f["user"]),
    ),
    "fail": (
        "faults",
        lambda s, f: actions.add_fault(s, f["match"], int(f["status"]), int(f["count"])),
    ),
    "reset": ("faults", lambda s, f: s.reset()),
}


@bp.post("/inspector/<name>")
def act(name: str) -> Response | tuple[str, int]:
    """Run one inspector button."""
    if name == "config":
        return _configure()
    if name not in ACTIONS:
        return "unknown action", 404
    tab, run = ACTIONS[name]
    try:
        run(current_state(), request.form)
    except (LookupError, ValueError) as error:
        return render_template(
            "error.html", title="操作できませんでした", message=str(error), brand="sandbox", code=""
        ), 400
    return _back(tab)


def _configure() -> Response:
    """Latency, rate-limit scale and Slack token rotation from the faults tab."""
    form = request.form
    state = current_state()
    with state.lock:
        state.settings.update(
            {
                "latency_ms": int(form.get("latency_ms") or 0),
                "rate_limit_scale": float(form.get("rate_limit_scale") or 1),
                "slack_token_rotation": form.get("slack_token_rotation") == "on",
            }
        )
    return _back("faults")
