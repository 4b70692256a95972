"""Slack's setup wizard: "Add to Slack" (OAuth v2 with PKCE), the code exchange, the checks.

The steps are the shared OAuth pair (``providers/oauth.py``); this module adds what is Slack's
own: the scopes, exchanging the code with slack_sdk, and turning the ``oauth.v2.access``
answer into a connection — refused when it is not a bot token or lacks a scope (OA-19).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...wizard import SetupError, Step
from ..base import ConnectionData
from ..oauth import OAuthAuthorizeStep, OAuthCallbackStep, OAuthExchanger, OAuthSpec
from .client import call_slack, token_expiry, token_secrets, web_client

#: Only what DMs and e-mail matching need, plus the channel picker (see the package header).
SCOPES = ("users:read", "users:read.email", "im:write", "chat:write", "incoming-webhook")

SLACK_SPEC = OAuthSpec(
    provider_key="slack",
    authorize_url_setting="SLACK_AUTHORIZE_URL",
    client_id_setting="SLACK_CLIENT_ID",
    scopes=SCOPES,
    scope_separator=",",
    # oauth.v2.access accepts code_verifier (providers.md §1.1); PKCE also stops code injection.
    pkce=True,
)


def setup_steps(exchanger: OAuthExchanger) -> list[Step]:
    """ "Add to Slack" (consent page, channel choice) and the callback."""
    return [
        OAuthAuthorizeStep(SLACK_SPEC, title=_l("Add to Slack"), name="install"),
        OAuthCallbackStep(SLACK_SPEC, exchanger, title=_l("Finish the connection")),
    ]


def exchange_code(*, code: str, redirect_uri: str, code_verifier: str | None) -> dict[str, Any]:
    """oauth.v2.access with HTTP Basic client auth (slack_sdk), the same redirect URI."""
    config = current_app.config
    arguments: dict[str, Any] = {
        "client_id": str(config["SLACK_CLIENT_ID"]),
        "client_secret": str(config["SLACK_CLIENT_SECRET"]),
        "code": code,
        "redirect_uri": redirect_uri,
    }
    if code_verifier:
        arguments["code_verifier"] = code_verifier
    answer = call_slack(lambda: web_client().oauth_v2_access(**arguments))
    return dict(answer.data)  # type: ignore[arg-type]


def build_connection(data: Mapping[str, Any]) -> ConnectionData:
    """Workspace, chosen channel, bot user and tokens from the oauth.v2.access answer."""
    token = data.get("token") or {}
    team = token.get("team") or {}
    if not token.get("access_token") or not team.get("id"):
        raise SetupError(_("Slack did not return a workspace token. Please start again."))
    if token.get("token_type") not in ("bot", "granular_bot"):
        raise SetupError(_("Slack did not return a workspace token. Please start again."))
    granted = {s.strip() for s in str(token.get("scope") or "").split(",") if s.strip()}
    missing = [scope for scope in SCOPES if scope not in granted]
    if missing:
        # OA-19: never "connected" with less than we need.
        raise SetupError(
            _(
                "Slack granted fewer permissions than needed (missing: %(scopes)s). "
                "Please install again and allow every permission.",
                scopes=", ".join(missing),
            )
        )
    webhook = token.get("incoming_webhook") or {}
    return ConnectionData(
        external_id=str(team["id"]),
        display_name=str(team.get("name") or team["id"]),
        config={
            "team_id": team["id"],
            "team_name": team.get("name"),
            "app_id": token.get("app_id"),
            "bot_user_id": token.get("bot_user_id"),
            "installer_id": (token.get("authed_user") or {}).get("id"),
            "scopes": sorted(granted),
            "channel_id": webhook.get("channel_id"),
            "channel_name": webhook.get("channel"),
            "rotation": bool(token.get("refresh_token")),
        },
        secrets=token_secrets(token),
        token_expires_at=token_expiry(token),
    )
