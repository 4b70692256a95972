"""oauth.chatwork.com: the token endpoint (authorization code + PKCE S256, refresh).

Client authentication is HTTP Basic (client id : secret). `expires_in` is a string, as the
community gem documents ("1800"); access tokens are JWTs like Chatwork's (iss/aud/account_id/
client_id/scope/exp), so a client may also read `exp`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.chatwork.models import OAuthClient
from sandbox.signing import base_claims
from sandbox.state import IssuedToken, SandboxState, current_state

bp = Blueprint("chatwork_oauth", __name__, url_prefix="/chatwork/oauth")

VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


class OAuthError(Exception):
    """An RFC 6749 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


def _authenticate_client(state: SandboxState) -> OAuthClient:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise OAuthError("invalid_client", "Malformed Authorization header", 401) from error
        client = state.chatwork.clients.get(client_id)
        if (
            client is None
            or client.client_secret is None
            or not secrets.compare_digest(client.client_secret, secret)
        ):
            raise OAuthError("invalid_client", "Client authentication failed", 401)
        return client
    # Public clients have no secret and name themselves in the body [UNCONFIRMED at Chatwork].
    client = state.chatwork.clients.get(request.form.get("client_id", ""))
    if client is None or client.client_type != "public":
        raise OAuthError("invalid_client", "Client authentication failed", 401)
    return client


@bp.route("/token", methods=["POST"])
def token() -> tuple[Response, int] | Response:
    """Issue or refresh tokens."""
    state = current_state()
    try:
        with state.lock:
            client = _authenticate_client(state)
            grant = request.form.get("grant_type", "")
            if grant == "authorization_code":
                payload = _exchange_code(state, client)
            elif grant == "refresh_token":
                payload = _refresh(state, client)
            else:
                raise OAuthError("unsupported_grant_type", "Unsupported grant_type")
    except OAuthError as failure:
        body = jsonify(error=failure.error, error_description=failure.description, error_uri=None)
        if failure.status == 401:
            body.headers["WWW-Authenticate"] = 'Basic realm="oauth.chatwork.com"'
        return body, failure.status
    response = jsonify(payload)
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_verifier(challenge: str | None) -> None:
    verifier = request.form.get("code_verifier")
    if challenge is None:
        return
    if not verifier:
        raise OAuthError("invalid_grant", "code_verifier is required")
    if not VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_request", "Malformed code_verifier (20000)")
    digest = hashlib.sha256(verifier.encode()).digest()
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
        raise OAuthError("invalid_grant", "code_verifier does not match")


def _exchange_code(state: SandboxState, client: OAuthClient) -> dict[str, Any]:
    code = state.chatwork.codes.get(request.form.get("code", ""))
    if code is None or code.used or code.client_id != client.client_id:
        raise OAuthError("invalid_grant", "Invalid authorization code")
    if code.expires_at < time.time():
        raise OAuthError("invalid_grant", "The authorization code has expired")
    redirect_uri = request.form.get("redirect_uri")
    if redirect_uri is None and len(client.redirect_uris) > 1:
        raise OAuthError("invalid_request", "redirect_uri is required")
    if redirect_uri is not None and redirect_uri != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match")
    _check_verifier(code.code_challenge)
    code.used = True
    return _issue(state, client, code.account_id, code.scopes, refresh=None)


def _refresh(state: SandboxState, client: OAuthClient) -> dict[str, Any]:
    old = state.find_token(request.form.get("refresh_token", ""))
    if (
        old is None
        or old.provider != "chatwork"
        or old.kind != "refresh"
        or old.client_id != client.client_id
        or old.status() != "active"
    ):
        raise OAuthError("invalid_grant", "Invalid refresh token")
    scopes = request.form.get("scope", "").split() or old.scopes
    if not set(scopes) <= set(old.scopes):
        raise OAuthError("invalid_scope", "Requested scope exceeds the granted scope")
    keep = None if state.settings.chatwork_rotate_refresh_tokens else old
    if keep is None:
        old.revoked_at = time.time()
    return _issue(state, client, int(old.owner), scopes, refresh=keep)


def _issue(
    state: SandboxState,
    client: OAuthClient,
    account_id: int,
    scopes: list[str],
    refresh: IssuedToken | None,
) -> dict[str, Any]:
    settings = state.settings
    if refresh is None:
        # Without offline_access the refresh token dies 14 days after issue.
        lifetime = (
            None if "offline_access" in scopes else time.time() + settings.chatwork_refresh_ttl
        )
        refresh = state.issue_token(
            provider="chatwork",
            kind="refresh",
            value=secrets.token_urlsafe(64),
            owner=str(account_id),
            client_id=client.client_id,
            scopes=scopes,
            expires_at=lifetime,
        )
    claims = base_claims(settings.chatwork_access_ttl)
    claims.update(
        iss="https://oauth.chatwork.com",
        aud="https://api.chatwork.com",
        sub=str(account_id),
        account_id=str(account_id),
        client_id=client.client_id,
        scope=" ".join(scopes),
    )
    access = state.issue_token(
        provider="chatwork",
        kind="access",
        value=state.keys.identity.sign(claims),
        owner=str(account_id),
        client_id=client.client_id,
        scopes=scopes,
        expires_at=float(claims["exp"]),
        pair=refresh.value,
    )
    return {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": str(settings.chatwork_access_ttl),
        "refresh_token": refresh.value,
        "scope": " ".join(scopes),
    }
