"""JSON control API under `/_control/` for tests and benchmarks.

Every endpoint takes and returns JSON. Errors: 400 `{"error": "..."}` for bad input, 404 for an
unknown workspace/tenant/user/token.

State
  POST /_control/reset                      back to the seeded state (settings included)
  GET  /_control/config                     current settings
  POST /_control/config                     partial update, e.g. {"latency_ms": 50,
                                            "rate_limit_scale": 0.1, "rate_window_scale": 0.01,
                                            "rate_limit_overrides": {"slack:users.list": [[2, 60]]},
                                            "slack_token_rotation": true, "chatwork_access_ttl": 5,
                                            "portal_url": "http://127.0.0.1:5000"}
Faults
  POST /_control/faults/fail                {"match": "slack:chat.postMessage" | "/chatwork/api/",
                                            "status": 503, "count": 2}
  POST /_control/faults/revoke-token        {"token": "<full value>"} or {"id": 12}
  POST /_control/faults/deactivate-user     {"provider": "slack|chatwork|microsoft",
                                            "user": "<id or e-mail>"}
  POST /_control/faults/clear               disarm every fault rule
Data
  POST /_control/data/<provider>            provider = slack | microsoft | chatwork;
                                            {"count": 10000, "domain": "bench.example",
                                            "match_ratio": 0.9, "seed": 1, "team_id"/"tenant_id",
                                            "name"}
  POST /_control/chatwork/clients           register an OAuth client {"name", "client_type",
                                            "redirect_uris": [...], "scopes": [...]} (defaults
                                            are the portal's values) -> client_id, client_secret
  GET  /_control/directory/<provider>       the seeded directory (users, contacts, tenants)
Read-outs
  GET  /_control/messages?provider=&user=   DMs received (user = id or e-mail)
  GET  /_control/tokens?provider=           issued tokens with status
  GET  /_control/requests                   {"counts": {operation: n}, "recent": [...]}
  GET  /_control/outbound                   events/activities sent to the portal, with status
  GET  /_control/mail?to=                   caught e-mail (the newest 5,000)
  GET  /_control/mail/count                 {"received": n}: every message caught since reset
Actions
  POST /_control/slack/uninstall            {"team_id": "T0DEMO0001"}
  POST /_control/teams/install              {"user": "<e-mail|object id>", "tenant_id"?}
  POST /_control/teams/uninstall            {"user": ..., "tenant_id"?}
  POST /_control/microsoft/consent          {"tenant_id": "..."}
  POST /_control/chatwork/accept-contact    {"request_id": 1} or {"account": "<id or e-mail>"}
  POST /_control/chatwork/contact-request   {"from": "<id or e-mail>", "to"?: <account id>,
                                            "message"?}: a member asks the notification account
  POST /_control/slack/people               {"team_id", "action": "join" | "change" | "leave",
                                            "email", "name"?, "tz"? (IANA)}: team_join /
                                            user_change to the portal
  GET/POST /_control/webhooks (+ /reset)     the webhook receiver at /hooks/<name>: what
                                            arrived, and its switches (see sandbox/webhooks.py)
  POST /_control/teams/app                  {"tenant_id", "reupload"?, "remove"?, "block"?: [...],
                                            "unblock"?: [...]}: the app in the org catalog
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox import actions, webhooks
from sandbox.state import current_state

bp = Blueprint("control", __name__, url_prefix="/_control")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.errorhandler(actions.NotFound)
def _not_found(error: actions.NotFound) -> tuple[Response, int]:
    return jsonify(error=str(error)), 404


@bp.errorhandler(ValueError)
def _bad_request(error: ValueError) -> tuple[Response, int]:
    return jsonify(error=str(error)), 400


@bp.post("/reset")
def reset() -> Response:
    """Back to the seeded state (the webhook receiver's inbox too)."""
    current_state().reset()
    webhooks.reset()
    return jsonify(ok=True)


@bp.route("/config", methods=["GET", "POST"])
def config() -> Response:
    """Read or partially update the settings."""
    state = current_state()
    with state.lock:
        if request.method == "POST":
            state.settings.update(_body())
        return jsonify(state.settings.as_dict())


@bp.post("/faults/fail")
def fail() -> Response:
    """Fail the next N matching calls."""
    body = _body()
    rule = actions.add_fault(
        current_state(),
        str(body.get("match", "")),
        int(body.get("status", 500)),
        int(body.get("count", 1)),
    )
    return jsonify(match=rule.match, status=rule.status, remaining=rule.remaining)


@bp.post("/faults/clear")
def clear_faults() -> Response:
    """Disarm every fault rule."""
    state = current_state()
    with state.lock:
        state.faults.clear()
    return jsonify(ok=True)


@bp.post("/faults/revoke-token")
def revoke_token() -> Response:
    """Revoke one token (and its pair)."""
    body = _body()
    token_id = body.get("id")
    token = actions.revoke(
        current_state(), body.get("token"), int(token_id) if token_id is not None else None
    )
    return jsonify(token.public())


@bp.post("/faults/deactivate-user")
def deactivate_user() -> Response:
    """Deactivate a provider user."""
    body = _body()
    return jsonify(
        actions.deactivate_user(current_state(), str(body.get("provider")), str(body.get("user")))
    )


@bp.post("/data/<provider>")
def generate(provider: str) -> Response:
    """Generate a benchmark directory."""
    return jsonify(actions.generate(current_state(), provider, _body()))


@bp.post("/chatwork/clients")
def chatwork_client() -> Response:
    """Register a Chatwork OAuth client."""
    return jsonify(actions.create_chatwork_client(current_state(), _body()))


@bp.get("/directory/<provider>")
def directory(provider: str) -> Response:
    """The provider's directory as the sandbox holds it."""
    state = current_state()
    with state.lock:
        if provider == "slack":
            return jsonify(
                {
                    ws.team_id: {
                        "name": ws.name,
                        "installed": ws.installed,
                        "users": [u.to_api(with_email=True) for u in ws.users],
                    }
                    for ws in state.slack.workspaces.values()
                }
            )
        if provider == "chatwork":
            data = state.chatwork
            return jsonify(
                {
                    "accounts": [
                        {
                            **a.me(),
                            "can_login": a.can_login,
                            "active": a.active,
                            "contacts": [c.account_id for c, _ in data.contacts_of(a.account_id)],
                        }
                        for a in data.accounts.values()
                    ],
                    "pending_requests": [vars(r) for r in data.requests.values()],
                }
            )
        if provider == "microsoft":
            return jsonify(
                {
                    t.tenant_id: {
                        "name": t.name,
                        "domain": t.domain,
                        "consented": t.consented,
                        "users": [
                            {**u.graph(), "teams_id": u.teams_id, "bot_installed": u.bot_installed}
                            for u in t.users
                        ],
                    }
                    for t in state.microsoft.tenants.values()
                }
            )
    raise actions.NotFound(f"unknown provider {provider!r}")


@bp.get("/messages")
def messages() -> Response:
    """Messages received by sandbox users."""
    return jsonify(
        actions.messages(current_state(), request.args.get("provider"), request.args.get("user"))
    )


@bp.get("/tokens")
def tokens() -> Response:
    """Issued tokens."""
    state = current_state()
    provider = request.args.get("provider")
    with state.lock:
        listed = [t.public() for t in state.tokens.values() if provider in (None, t.provider)]
    return jsonify(listed)


@bp.get("/requests")
def requests_log() -> Response:
    """Request counts per operation and the most recent requests."""
    state = current_state()
    with state.lock:
        return jsonify(
            counts=dict(state.request_counts),
            recent=[vars(r) for r in list(state.requests)[:200]],
        )


@bp.get("/outbound")
def outbound() -> Response:
    """What the sandbox posted to the portal."""
    state = current_state()
    with state.lock:
        return jsonify([vars(o) for o in state.outbound])


@bp.get("/mail")
def mail() -> Response:
    """Caught e-mail."""
    return jsonify([m.public() for m in current_state().mail.all(request.args.get("to"))])


@bp.get("/mail/count")
def mail_count() -> Response:
    """How many messages were caught, including those past the kept 5,000 (load benchmarks)."""
    return jsonify(received=current_state().mail.received)


@bp.post("/slack/uninstall")
def slack_uninstall() -> Response:
    """Uninstall the Slack app from a workspace (events go to the portal)."""
    team_id = str(_body().get("team_id", ""))
    return jsonify(team_id=team_id, portal=actions.slack_uninstall(current_state(), team_id))


@bp.post("/slack/press")
def slack_press() -> Response:
    """``{"team_id", "ts", "action_id"}``: the DM's recipient presses one of its buttons."""
    body = _body()
    return jsonify(
        actions.slack_press(
            current_state(),
            str(body.get("team_id") or ""),
            str(body.get("ts") or ""),
            str(body.get("action_id") or ""),
        )
    )


@bp.post("/teams/press")
def teams_press() -> Response:
    """``{"activity_id", "verb"}``: the member presses an ``Action.Execute`` of a card."""
    body = _body()
    return jsonify(
        actions.teams_press(
            current_state(), str(body.get("activity_id") or ""), str(body.get("verb") or "")
        )
    )


@bp.post("/teams/install")
def teams_install() -> Response:
    """A member adds the bot in Teams."""
    body = _body()
    return jsonify(
        actions.teams_add_bot(current_state(), str(body.get("user")), body.get("tenant_id"))
    )


@bp.post("/teams/uninstall")
def teams_uninstall() -> Response:
    """A member removes the bot in Teams."""
    body = _body()
    return jsonify(
        actions.teams_remove_bot(current_state(), str(body.get("user")), body.get("tenant_id"))
    )


@bp.post("/microsoft/consent")
def microsoft_consent() -> Response:
    """Record admin consent without the page."""
    actions.consent(current_state(), str(_body().get("tenant_id", "")))
    return jsonify(ok=True)


@bp.post("/slack/people")
def slack_people() -> Response:
    """``{"team_id", "action": "join" | "change" | "leave", "email", "name", "tz"}``: a new
    hire joins the workspace, a member changes their name or time zone, or is deactivated;
    the portal gets the signed event. An unknown ``tz`` is a 400."""
    body = _body()
    return jsonify(
        actions.slack_person(
            current_state(),
            str(body.get("team_id") or ""),
            str(body.get("action") or ""),
            str(body.get("email") or ""),
            str(body.get("name") or ""),
            str(body.get("tz") or ""),
        )
    )


@bp.post("/teams/app")
def teams_app() -> Response:
    """The tenant's copy of the Teams app: ``reupload`` gives it a new catalog id, ``remove``
    takes it out of the catalog, ``block``/``unblock`` (e-mails or ids) apply an app
    permission policy to users."""
    body = _body()
    return jsonify(
        actions.teams_app(
            current_state(),
            str(body.get("tenant_id") or ""),
            reupload=bool(body.get("reupload")),
            remove=bool(body.get("remove")),
            block=[str(v) for v in body.get("block") or []],
            unblock=[str(v) for v in body.get("unblock") or []],
        )
    )


@bp.post("/chatwork/contact-request")
def chatwork_contact_request() -> Response:
    """A member sends a contact request (to the notification account unless ``to`` says)."""
    body = _body()
    to = body.get("to")
    return jsonify(
        actions.send_contact_request(
            current_state(),
            str(body.get("from", "")),
            int(to) if to is not None else None,
            str(body.get("message") or ""),
        )
    )


@bp.post("/chatwork/accept-contact")
def chatwork_accept() -> Response:
    """Accept a pending contact request."""
    body = _body()
    request_id = body.get("request_id")
    return jsonify(
        actions.accept_contact_request(
            current_state(),
            int(request_id) if request_id is not None else None,
            body.get("account"),
        )
    )
