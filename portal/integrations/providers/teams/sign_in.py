"""Microsoft sign-in for members linking their own account: the company's own tenant only.

The authorize URL names the connected tenant (never ``common`` or ``organizations``), so only
that tenant's users (and its guests) can sign in. The code is redeemed with msal — the same
per-tenant confidential client the app's tokens come from — with our PKCE verifier and nonce
(``acquire_token_by_auth_code_flow``); msal checks the id_token's audience, expiry and nonce.
The id_token comes straight from the token endpoint over TLS, which OpenID Connect Core
§3.1.3.7 accepts in place of a signature check. The member is linked on ``oid`` within
``tid``: ``sub`` is pairwise per app and the e-mail claim is not verified by Entra, so
neither is ever the key.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import requests
from flask import current_app
from flask_babel import gettext as _

from ...models import Integration
from ..base import (
    DirectoryEntry,
    MemberSignIn,
    ProviderAuthError,
    SignInRefused,
    SignInRequest,
    TemporaryProviderError,
)
from .tokens import msal_app

#: The id_token and a profile are all the sign-in needs: no Graph permission for the member.
SCOPES = ("openid", "profile")
FLOW_STATE = "checked-by-the-portal"


class TeamsSignIn(MemberSignIn):
    """:class:`~..base.MemberSignIn` for Microsoft (Entra ID)."""

    def authorize_url(self, integration: Integration, request: SignInRequest) -> str:
        config = current_app.config
        params = {
            "client_id": str(config.get("MS_APP_ID") or ""),
            "response_type": "code",
            "response_mode": "query",
            "redirect_uri": request.redirect_uri,
            "scope": " ".join(SCOPES),
            "state": request.state,
            # msal's convention: the URL carries the nonce's SHA-256, the id_token echoes it.
            "nonce": hashlib.sha256(request.nonce.encode("ascii")).hexdigest(),
            "code_challenge": request.code_challenge,
            "code_challenge_method": "S256",
            "prompt": "select_account",
        }
        base = str(config["MS_CONSENT_URL"]).rstrip("/")
        return f"{base}/{integration.external_id}/oauth2/v2.0/authorize?{urlencode(params)}"

    def identify(
        self,
        integration: Integration,
        *,
        code: str,
        redirect_uri: str,
        nonce: str,
        code_verifier: str,
    ) -> DirectoryEntry:
        tenant = str(integration.external_id or "")
        app = msal_app(tenant)
        # msal's auth-code flow as msal itself would have started it: the portal checked and
        # consumed the real ``state`` already, so both sides carry the same marker here.
        flow = {
            "state": FLOW_STATE,
            "redirect_uri": redirect_uri,
            "scope": list(SCOPES),
            "code_verifier": code_verifier,
            "nonce": nonce,
        }
        try:
            result: dict[str, Any] = app.acquire_token_by_auth_code_flow(
                flow, {"code": code, "state": FLOW_STATE}
            )
        except requests.RequestException:
            raise TemporaryProviderError(
                "Microsoft login unreachable", code="login_unreachable"
            ) from None
        except (ValueError, RuntimeError):
            # msal raises RuntimeError when the id_token's nonce is not ours, ValueError for a
            # flow it cannot use.
            raise SignInRefused(
                _("Microsoft's answer belongs to another sign-in. Please try again.")
            ) from None
        if "error" in result:
            raise ProviderAuthError(
                "Microsoft refused the code", code=str(result.get("error"))[:64]
            )
        claims = result.get("id_token_claims") or {}
        if str(claims.get("tid") or "").lower() != tenant.lower() or not claims.get("oid"):
            raise SignInRefused(
                _("You signed in with an account of another organization than your company's. "
                  "Sign in with your work account and try again.")
            )  # fmt: skip
        oid = str(claims["oid"])[:128]
        return DirectoryEntry(external_id=oid, name=str(claims.get("name") or oid)[:200])
