"""The Slack Web API dispatcher: `/slack/api/<method>`, as slack_sdk calls it.

Every method answers HTTP 200 with `{"ok": ...}` except rate limiting (429 + Retry-After), as
Slack does. Arguments may come in the query string, a form body or a JSON body; the token in
`Authorization: Bearer` or (legacy) a `token` argument.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.slack.models import SlackWorkspace
from sandbox.state import IssuedToken, SandboxState, current_state
from sandbox.traffic import bearer_token

bp = Blueprint("slack_api", __name__, url_prefix="/slack/api")


class SlackError(Exception):
    """Raised by a method handler to answer `{ok: false, error}` (plus extra fields)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class RateLimited(Exception):
    """Raised to answer HTTP 429 with `Retry-After`."""

    def __init__(self, retry_after: str) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass
class Call:
    """One Web API call after authentication."""

    state: SandboxState
    args: dict[str, Any]
    token: IssuedToken | None
    workspace: SlackWorkspace | None

    @property
    def team(self) -> SlackWorkspace:
        """The calling token's workspace (only for methods that need a token)."""
        assert self.workspace is not None
        return self.workspace


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class MethodSpec:
    """How to authorize a method: token needed, and which scopes (any one) it accepts.
    ``own_limits``: the handler counts its rate limits itself (not once per workspace)."""

    handler: Handler
    needs_token: bool
    scopes: tuple[str, ...]
    own_limits: bool = False


METHODS: dict[str, MethodSpec] = {}


def method(
    name: str, scopes: tuple[str, ...] = (), needs_token: bool = True, own_limits: bool = False
) -> Callable[[Handler], Handler]:
    """Register a Web API method handler."""

    def register(handler: Handler) -> Handler:
        METHODS[name] = MethodSpec(handler, needs_token, scopes, own_limits)
        return handler

    return register


def new_token(prefix: str) -> str:
    """A Slack-looking token: prefix, two numeric parts and 24 random characters."""
    digits = "".join(secrets.choice("0123456789") for _ in range(13))
    return f"{prefix}-{digits[:10]}-{digits[10:]}{secrets.randbelow(10**9)}-{secrets.token_hex(12)}"


def check_rate(state: SandboxState, bucket: str, key: str) -> None:
    """Count a request in `bucket` for `key`; raise RateLimited when over the limit."""
    decision = state.limiter.hit(f"{bucket}|{key}", state.settings.rate_rules(bucket))
    if not decision.allowed:
        raise RateLimited(decision.retry_after_header)


def _arguments() -> dict[str, Any]:
    args: dict[str, Any] = dict(request.args.items())
    args.update(request.form.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            args.update(body)
    return args


def _authenticate(state: SandboxState, args: dict[str, Any], spec: MethodSpec) -> Call:
    value = bearer_token() or args.get("token")
    if not value:
        raise SlackError("not_authed")
    token = state.find_token(str(value))
    if token is None or token.provider != "slack" or token.kind == "refresh":
        raise SlackError("invalid_auth")
    status = token.status()
    if status == "revoked":
        raise SlackError("token_revoked")
    if status == "expired":
        raise SlackError("token_expired")
    workspace = state.slack.workspaces.get(token.owner)
    if workspace is None:
        raise SlackError("account_inactive")
    if spec.scopes and not set(spec.scopes) & set(token.scopes):
        raise SlackError(
            "missing_scope", needed=",".join(spec.scopes), provided=",".join(token.scopes)
        )
    return Call(state, args, token, workspace)


@bp.route("/<name>", methods=["GET", "POST"])
def dispatch(name: str) -> Response | tuple[Response, int]:
    """Run one Web API method."""
    spec = METHODS.get(name)
    if spec is None:
        return jsonify(ok=False, error="unknown_method")
    state = current_state()
    args = _arguments()
    try:
        with state.lock:
            if spec.needs_token:
                call = _authenticate(state, args, spec)
                if not spec.own_limits:
                    check_rate(state, f"slack:{name}", call.team.team_id)
            else:
                call = Call(state, args, None, None)
            payload = spec.handler(call)
    except SlackError as failure:
        return jsonify({"ok": False, "error": failure.error, **failure.extra})
    except RateLimited as limited:
        response = jsonify(ok=False, error="ratelimited")
        response.headers["Retry-After"] = limited.retry_after
        return response, 429
    return jsonify({"ok": True, **payload})


def parse_blocks(value: Any) -> list[Any] | None:
    """`blocks` arrives as a list (JSON body) or a JSON string (form body)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise SlackError("invalid_blocks") from error
    if not isinstance(value, list):
        raise SlackError("invalid_blocks")
    return value
