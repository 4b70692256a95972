"""Sign in with Slack (OpenID Connect), as a member signing in to link their own account.

- ``GET /slack/openid/connect/authorize``: the sign-in page. Slack signs the browser's own
  user in; the sandbox lets the person pick a workspace and a user to be (the inspector's
  "sign in as"), then 許可する / キャンセル.
- ``openid.connect.token``: code → a user token (``xoxp-``) and an RS256 ``id_token`` whose
  claims are Slack's (``https://slack.com/team_id``, ``…/user_id``, ``nonce``…).
- ``openid.connect.userInfo``: the same claims for the user token.
- ``GET /slack/openid/connect/keys``: the JWKS that verifies the ``id_token``.

Codes are single use and live as long as the install's codes.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.config import SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
from sandbox.pages import error_page, is_registered_redirect, redirect_to
from sandbox.signing import base_claims
from sandbox.slack.api import Call, SlackError, check_rate, method, new_token
from sandbox.slack.models import SlackCode, SlackUser, SlackWorkspace
from sandbox.slack.oauth import client_credentials
from sandbox.state import current_state

bp = Blueprint("slack_openid", __name__, url_prefix="/slack/openid/connect")

ISSUER = "https://slack.com"
SCOPES = {"openid", "email", "profile"}
#: id_tokens live an hour at Slack.
ID_TOKEN_TTL = 3600


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse | tuple[str, int] | str:
    """The sign-in page: choose who you are in which workspace, then allow or cancel."""
    state = current_state()
    params = request.values
    if params.get("client_id") != SLACK_CLIENT_ID:
        return error_page(
            "エラーが発生しました", "client_id が無効です。", 400, "slack", "invalid_client_id"
        )
    redirect_uri = params.get("redirect_uri") or ""
    if not is_registered_redirect(redirect_uri, state.settings.portal_url):
        message = "redirect_uri がアプリに設定された URL と一致しません。"
        return error_page("エラーが発生しました", message, 400, "slack", "bad_redirect_uri")
    scopes = set((params.get("scope") or "").split())
    if "openid" not in scopes or not scopes <= SCOPES or params.get("response_type") != "code":
        message = "要求された権限が無効です: " + (params.get("scope") or "(なし)")
        return error_page("エラーが発生しました", message, 400, "slack", "invalid_scope")
    with state.lock:
        workspaces = list(state.slack.workspaces.values())
        workspace = state.slack.workspaces.get(params.get("team") or "") or workspaces[0]
        people = [u for u in workspace.users if not u.is_bot and not u.deleted]
    if request.method == "POST":
        oauth_state = params.get("state")
        if params.get("decision") != "allow":
            return redirect_to(redirect_uri, {"error": "access_denied", "state": oauth_state})
        user = next((u for u in people if u.id == params.get("user")), None)
        if user is not None:
            code = _create_code(workspace, user, sorted(scopes), redirect_uri, params.get("nonce"))
            return redirect_to(redirect_uri, {"code": code, "state": oauth_state})
    return render_template(
        "slack_openid.html",
        workspace=workspace,
        workspaces=workspaces,
        people=people,
        hidden={k: v for k, v in params.items() if k not in ("team", "user", "decision")},
    )


def _create_code(
    workspace: SlackWorkspace,
    user: SlackUser,
    scopes: list[str],
    redirect_uri: str,
    nonce: str | None,
) -> str:
    state = current_state()
    code = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(32)}"
    with state.lock:
        state.slack.codes[code] = SlackCode(
            code=code,
            team_id=workspace.team_id,
            scopes=scopes,
            redirect_uri=redirect_uri,
            webhook_channel=None,
            expires_at=time.time() + state.settings.slack_code_ttl,
            user_id=user.id,
            nonce=nonce,
        )
    return code


def _claims(workspace: SlackWorkspace, user: SlackUser, scopes: list[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user.id,
        "https://slack.com/user_id": user.id,
        "https://slack.com/team_id": workspace.team_id,
        "https://slack.com/team_name": workspace.name,
        "https://slack.com/team_domain": workspace.domain,
    }
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=True)
    if "profile" in scopes:
        claims.update(name=user.real_name, given_name=user.first_name, locale="ja-JP")
    return claims


@method("openid.connect.token", needs_token=False)
def openid_connect_token(call: Call) -> dict[str, Any]:
    """Exchange a sign-in code for a user token and an id_token."""
    client_id, secret = client_credentials(call.args)
    if client_id != SLACK_CLIENT_ID:
        raise SlackError("invalid_client_id")
    if secret != SLACK_CLIENT_SECRET:
        raise SlackError("bad_client_secret")
    check_rate(call.state, "slack:openid.connect.token", client_id)
    code = call.state.slack.codes.get(str(call.args.get("code", "")))
    if code is None or code.used or code.expires_at < time.time() or code.user_id is None:
        raise SlackError("invalid_code")
    if call.args.get("redirect_uri") != code.redirect_uri:
        raise SlackError("bad_redirect_uri")
    code.used = True
    workspace = call.state.slack.workspaces[code.team_id]
    user = next(u for u in workspace.users if u.id == code.user_id)
    token = call.state.issue_token(
        provider="slack",
        kind="user",
        value=new_token("xoxp"),
        owner=workspace.team_id,
        client_id=client_id,
        scopes=code.scopes,
        extra={"user_id": user.id},
    )
    claims = {
        **base_claims(ID_TOKEN_TTL),
        **_claims(workspace, user, code.scopes),
        "aud": client_id,
        "auth_time": int(time.time()),
    }
    if code.nonce:
        claims["nonce"] = code.nonce
    return {
        "access_token": token.value,
        "token_type": "Bearer",
        "id_token": call.state.keys.slack.sign(claims),
    }


@method("openid.connect.userInfo", scopes=("openid",))
def openid_connect_user_info(call: Call) -> dict[str, Any]:
    """The signed-in user's claims, for a user token from openid.connect.token."""
    assert call.token is not None
    user_id = call.token.extra.get("user_id")
    user = next((u for u in call.team.users if u.id == user_id), None)
    if call.token.kind != "user" or user is None:
        raise SlackError("invalid_auth")
    return _claims(call.team, user, call.token.scopes)


@bp.get("/keys")
def keys() -> Response:
    """The public keys that sign Slack's id_tokens."""
    return jsonify(keys=[current_state().keys.slack.jwk()])
