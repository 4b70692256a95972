"""Slack OAuth v2: the install (consent) page and `oauth.v2.access`.

The consent page mirrors what a workspace admin sees: the workspace, the bot scopes, and, because
`incoming-webhook` is requested, a channel picker (the seed's step 2). Codes live 10 minutes
[UNCONFIRMED at Slack; commonly quoted] and are single use.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from flask import Blueprint, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sandbox.config import SLACK_APP_ID, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
from sandbox.pages import error_page, is_registered_redirect, redirect_to, with_query
from sandbox.slack.api import Call, SlackError, check_rate, method, new_token
from sandbox.slack.models import SlackCode, SlackWorkspace
from sandbox.state import IssuedToken, SandboxState, current_state

bp = Blueprint("slack_oauth", __name__, url_prefix="/slack")

SCOPE_LABELS = {
    "users:read": "ワークスペースのメンバーとその基本情報を表示する",
    "users:read.email": "ワークスペースのメンバーのメールアドレスを表示する",
    "im:write": "メンバーとのダイレクトメッセージを開始する",
    "chat:write": "Wistant としてメッセージを送信する",
    "incoming-webhook": "特定のチャンネルにメッセージを投稿する",
    "channels:read": "パブリックチャンネルの基本情報を表示する",
    "im:read": "ダイレクトメッセージの基本情報を表示する",
    "team:read": "ワークスペースの名前、メールドメイン、アイコンを表示する",
}


def _split(value: str | None) -> list[str]:
    return [s.strip() for s in (value or "").replace(" ", ",").split(",") if s.strip()]


@bp.route("/oauth/v2/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse | tuple[str, int] | str:
    """Consent page: pick the workspace and channel, then 許可する / キャンセル."""
    state = current_state()
    params = request.values
    if params.get("client_id") != SLACK_CLIENT_ID:
        return error_page(
            "エラーが発生しました", "client_id が無効です。", 400, "slack", "invalid_client_id"
        )
    redirect_uri = params.get("redirect_uri") or None
    target = redirect_uri or f"{state.settings.portal_url}/slack/oauth/callback"
    if not is_registered_redirect(target, state.settings.portal_url):
        message = "redirect_uri がアプリに設定された URL と一致しません。"
        return error_page("エラーが発生しました", message, 400, "slack", "bad_redirect_uri")
    scopes = _split(params.get("scope"))
    unknown = [s for s in scopes if s not in SCOPE_LABELS]
    if not scopes or unknown:
        message = "要求された権限が無効です: " + (", ".join(unknown) or "(なし)")
        return error_page("エラーが発生しました", message, 400, "slack", "invalid_scope")
    with state.lock:
        workspace = state.slack.workspaces.get(params.get("team") or "") or next(
            iter(state.slack.workspaces.values())
        )
    wants_webhook = "incoming-webhook" in scopes
    error = ""
    if request.method == "POST":
        oauth_state = params.get("state")
        if params.get("decision") != "allow":
            return redirect_to(target, {"error": "access_denied", "state": oauth_state})
        channel = params.get("channel") if wants_webhook else None
        if not wants_webhook or workspace.channel_name(channel or ""):
            code = _create_code(state, workspace, scopes, redirect_uri, channel)
            return redirect_to(target, {"code": code, "state": oauth_state})
        error = "投稿先のチャンネルを選択してください。"
    switch_links = {
        ws.team_id: with_query(url_for(".authorize"), {**_without_team(), "team": ws.team_id})
        for ws in state.slack.workspaces.values()
    }
    return render_template(
        "slack_authorize.html",
        workspace=workspace,
        workspaces=list(state.slack.workspaces.values()),
        switch_links=switch_links,
        scopes=[(s, SCOPE_LABELS[s]) for s in scopes],
        wants_webhook=wants_webhook,
        error=error,
    )


def _without_team() -> dict[str, str | None]:
    return {k: v for k, v in request.args.items() if k != "team"}


def _create_code(
    state: SandboxState,
    workspace: SlackWorkspace,
    scopes: list[str],
    redirect_uri: str | None,
    channel: str | None,
) -> str:
    code = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(32)}"
    with state.lock:
        state.slack.codes[code] = SlackCode(
            code=code,
            team_id=workspace.team_id,
            scopes=scopes,
            redirect_uri=redirect_uri,
            webhook_channel=channel,
            expires_at=time.time() + state.settings.slack_code_ttl,
        )
    return code


def client_credentials(args: dict[str, Any]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return str(args.get("client_id", "")), str(args.get("client_secret", ""))


@method("oauth.v2.access", needs_token=False)
def oauth_v2_access(call: Call) -> dict[str, Any]:
    """Exchange a code (or, with rotation, a refresh token) for a bot token."""
    client_id, secret = client_credentials(call.args)
    if client_id != SLACK_CLIENT_ID:
        raise SlackError("invalid_client_id")
    if secret != SLACK_CLIENT_SECRET:
        raise SlackError("bad_client_secret")
    check_rate(call.state, "slack:oauth.v2.access", client_id)
    grant = call.args.get("grant_type") or "authorization_code"
    if grant == "refresh_token":
        return _refresh(call.state, str(call.args.get("refresh_token", "")))
    if grant != "authorization_code":
        raise SlackError("invalid_grant_type")
    code = call.state.slack.codes.get(str(call.args.get("code", "")))
    if code is None or code.used or code.expires_at < time.time():
        raise SlackError("invalid_code")
    if code.redirect_uri and call.args.get("redirect_uri") != code.redirect_uri:
        raise SlackError("bad_redirect_uri")
    code.used = True
    workspace = call.state.slack.workspaces[code.team_id]
    workspace.installed = True
    workspace.webhook_channel = code.webhook_channel or workspace.webhook_channel
    token, refresh = _issue(call.state, workspace, code.scopes)
    payload: dict[str, Any] = {
        "app_id": SLACK_APP_ID,
        "authed_user": {"id": workspace.installer_id},
        "scope": ",".join(code.scopes),
        "token_type": "bot",
        "access_token": token.value,
        "bot_user_id": workspace.bot_user_id,
        "team": {"id": workspace.team_id, "name": workspace.name},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if code.webhook_channel:
        payload["incoming_webhook"] = _webhook(call.state, workspace, code.webhook_channel)
    if refresh is not None:
        payload.update(_expiry_fields(token, refresh))
    return payload


def _issue(
    state: SandboxState, workspace: SlackWorkspace, scopes: list[str]
) -> tuple[IssuedToken, IssuedToken | None]:
    """A bot token; with rotation on, an expiring one plus its refresh token."""
    if not state.settings.slack_token_rotation:
        # A reinstall without rotation hands back the workspace's existing bot token.
        for existing in state.tokens.values():
            if (
                existing.provider == "slack"
                and existing.owner == workspace.team_id
                and existing.kind == "bot"
                and existing.status() == "active"
                and existing.expires_at is None
            ):
                existing.scopes = sorted(set(existing.scopes) | set(scopes))
                return existing, None
        token = state.issue_token(
            provider="slack",
            kind="bot",
            value=new_token("xoxb"),
            owner=workspace.team_id,
            client_id=SLACK_CLIENT_ID,
            scopes=scopes,
        )
        return token, None
    refresh = state.issue_token(
        provider="slack",
        kind="refresh",
        value="xoxe-1-" + secrets.token_hex(48),
        owner=workspace.team_id,
        client_id=SLACK_CLIENT_ID,
        scopes=scopes,
    )
    token = state.issue_token(
        provider="slack",
        kind="bot",
        value=new_token("xoxe.xoxb-1"),
        owner=workspace.team_id,
        client_id=SLACK_CLIENT_ID,
        scopes=scopes,
        expires_at=time.time() + state.settings.slack_access_ttl,
        pair=refresh.value,
    )
    refresh.pair = token.value
    return token, refresh


def _expiry_fields(token: IssuedToken, refresh: IssuedToken) -> dict[str, Any]:
    assert token.expires_at is not None
    return {"expires_in": round(token.expires_at - time.time()), "refresh_token": refresh.value}


def _refresh(state: SandboxState, value: str) -> dict[str, Any]:
    old = state.find_token(value)
    if old is None or old.provider != "slack" or old.kind != "refresh" or old.revoked_at:
        raise SlackError("invalid_refresh_token")
    workspace = state.slack.workspaces[old.owner]
    # Each refresh revokes the old refresh token; the old access token lives until it expires.
    old.revoked_at = time.time()
    rotation_was_on = state.settings.slack_token_rotation
    state.settings.slack_token_rotation = True
    try:
        token, refresh = _issue(state, workspace, old.scopes)
    finally:
        state.settings.slack_token_rotation = rotation_was_on
    assert refresh is not None
    return {
        "app_id": SLACK_APP_ID,
        "scope": ",".join(old.scopes),
        "token_type": "bot",
        "access_token": token.value,
        "bot_user_id": workspace.bot_user_id,
        "team": {"id": workspace.team_id, "name": workspace.name},
        "enterprise": None,
        "is_enterprise_install": False,
        **_expiry_fields(token, refresh),
    }


def _webhook(state: SandboxState, workspace: SlackWorkspace, channel_id: str) -> dict[str, str]:
    hook = f"B{secrets.token_hex(5).upper()}"
    return {
        "channel": "#" + (workspace.channel_name(channel_id) or "general"),
        "channel_id": channel_id,
        "configuration_url": f"{workspace.url}services/{hook}",
        "url": f"{state.settings.https_url}/slack/hooks/services/"
        f"{workspace.team_id}/{hook}/{secrets.token_urlsafe(18)}",
    }
