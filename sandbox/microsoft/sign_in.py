"""Entra ID user sign-in (authorization code + PKCE), for members linking their own account.

- ``GET/POST /microsoft/login/{tenant}/oauth2/v2.0/authorize``: the sign-in page of one
  tenant. Entra signs the browser's own user in; the sandbox lets the person pick a user of
  that tenant (the inspector's "sign in as"), then 承諾 / キャンセル. A tenant that does not
  exist gets AADSTS90002, as at Microsoft.
- The ``authorization_code`` grant at the tenant's token endpoint (``identity.token``): PKCE
  S256 checked, one use, an id_token (signed by the Entra key) with ``oid``, ``tid``, the
  pairwise ``sub``, ``nonce``, ``name`` and ``preferred_username``; ``client_info`` as msal
  expects it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from flask import render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.config import MS_CLIENT_ID
from sandbox.microsoft.identity import USER_GRANTS, AADError, login_bp
from sandbox.microsoft.models import MicrosoftCode, Tenant, TenantUser
from sandbox.pages import error_page, is_registered_redirect, redirect_to
from sandbox.signing import base_claims
from sandbox.state import SandboxState, current_state

#: Entra's authorization codes live about 10 minutes.
CODE_TTL = 600
ID_TOKEN_TTL = 3600


@login_bp.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
def authorize(tenant: str) -> BaseResponse | tuple[str, int] | str:
    """The tenant's sign-in page: pick who you are, then allow or cancel."""
    state = current_state()
    params = request.values
    if params.get("client_id") != MS_CLIENT_ID:
        message = f"Application with identifier '{params.get('client_id', '')}' was not found."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS700016")
    redirect_uri = params.get("redirect_uri") or ""
    if not is_registered_redirect(redirect_uri, state.settings.portal_url):
        message = "The redirect URI specified in the request does not match the redirect URIs."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS50011")
    with state.lock:
        found: Tenant | None = state.microsoft.tenant_for(tenant)
        people = [u for u in found.users if u.account_enabled] if found else []
    if found is None:
        message = f"Tenant '{tenant}' not found."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS90002")
    scopes = params.get("scope", "").split()
    if "openid" not in scopes or params.get("response_type") != "code":
        message = "The provided value for the input parameter 'scope' is not valid."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS70011")
    if request.method == "POST":
        oauth_state = params.get("state")
        if params.get("decision") != "allow":
            description = "AADSTS65004: User declined to consent to access the app."
            return redirect_to(
                redirect_uri,
                {"error": "access_denied", "error_description": description, "state": oauth_state},
            )
        user = next((u for u in people if u.id == params.get("user")), None)
        if user is not None:
            code = secrets.token_urlsafe(48)
            with state.lock:
                state.microsoft.codes[code] = MicrosoftCode(
                    tenant_id=found.tenant_id,
                    user_id=user.id,
                    redirect_uri=redirect_uri,
                    scopes=scopes,
                    nonce=params.get("nonce"),
                    challenge=params.get("code_challenge"),
                    expires_at=time.time() + CODE_TTL,
                )
            return redirect_to(redirect_uri, {"code": code, "state": oauth_state})
    return render_template(
        "microsoft_sign_in.html",
        tenant=found,
        people=people,
        hidden={k: v for k, v in params.items() if k not in ("user", "decision")},
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def exchange_code(state: SandboxState, tenant_key: str, form: Any) -> dict[str, Any]:
    """The ``authorization_code`` grant: the caller holds ``state.lock`` and checked the
    client's credentials."""
    code = state.microsoft.codes.get(str(form.get("code", "")))
    tenant = state.microsoft.tenant_for(tenant_key)
    if code is None or code.used or code.expires_at < time.time():
        raise AADError("invalid_grant", 70008, "The provided authorization code has expired.")
    if tenant is None or tenant.tenant_id != code.tenant_id:
        raise AADError("invalid_grant", 50148, "The code was issued to another tenant.")
    if form.get("redirect_uri") != code.redirect_uri:
        raise AADError("invalid_grant", 50011, "The redirect URI does not match.")
    if code.challenge is not None:
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
            raise AADError("invalid_grant", 501481, "The Code_Verifier does not match.")
    code.used = True
    user: TenantUser = next(u for u in tenant.users if u.id == code.user_id)
    claims = {
        **base_claims(ID_TOKEN_TTL),
        "aud": MS_CLIENT_ID,
        "iss": f"https://login.microsoftonline.com/{tenant.tenant_id}/v2.0",
        "tid": tenant.tenant_id,
        "oid": user.id,
        # Pairwise per app: never the key to link on (the portal uses oid + tid).
        "sub": hashlib.sha256(f"{MS_CLIENT_ID}:{user.id}".encode()).hexdigest()[:43],
        "name": user.display_name,
        "preferred_username": user.user_principal_name,
        "ver": "2.0",
    }
    if code.nonce:
        claims["nonce"] = code.nonce
    return {
        "token_type": "Bearer",
        "scope": " ".join(s for s in code.scopes if s not in ("openid", "offline_access")),
        "expires_in": ID_TOKEN_TTL,
        "ext_expires_in": ID_TOKEN_TTL,
        "access_token": secrets.token_urlsafe(32),
        "id_token": state.keys.identity.sign(claims),
        "client_info": _b64({"uid": user.id, "utid": tenant.tenant_id}),
    }


USER_GRANTS["authorization_code"] = exchange_code
