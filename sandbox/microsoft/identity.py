"""login.microsoftonline.com and login.botframework.com stand-ins.

- Admin consent page (v2 `/{tenant}/v2.0/adminconsent`, and the v1 `/{tenant}/adminconsent`).
- Client-credentials token endpoint `/{tenant}/oauth2/v2.0/token` for Graph and Bot Framework,
  and the authorization-code grant of a member's sign-in (``sign_in.py``).
- OpenID metadata + JWKS, so msal's tenant discovery works against the sandbox.
- The Bot Framework channel's OpenID metadata and endorsed keys.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.config import (
    BOTFRAMEWORK_ISSUER,
    BOTFRAMEWORK_RESOURCE,
    BOTFRAMEWORK_TENANT_ID,
    GRAPH_RESOURCE,
    MS_APP_NAME,
    MS_CLIENT_ID,
    MS_CLIENT_SECRET,
)
from sandbox.microsoft.models import Tenant
from sandbox.pages import error_page, is_registered_redirect, redirect_to
from sandbox.signing import base_claims
from sandbox.state import SandboxState, current_state

login_bp = Blueprint("microsoft_login", __name__, url_prefix="/microsoft/login")
botframework_bp = Blueprint(
    "microsoft_botframework", __name__, url_prefix="/microsoft/botframework"
)

BOTFRAMEWORK_TENANTS = ("botframework.com", BOTFRAMEWORK_TENANT_ID)
SERVICE_PRINCIPAL_OID = "3c1f6b8e-5d2a-4f7c-9e0b-1a2b3c4d5e6f"


#: Grants other modules answer at the token endpoint (``sign_in.py``: authorization_code):
#: ``(state, tenant, form) -> token response``, called under the state's lock.
USER_GRANTS: dict[str, Callable[[SandboxState, str, Any], dict[str, Any]]] = {}


class AADError(Exception):
    """An Entra ID error answer: `error`, AADSTS code and message."""

    def __init__(self, error: str, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.code, self.message, self.status = error, code, message, status

    def response(self) -> tuple[Response, int]:
        """The JSON body Entra sends (with trace and correlation ids)."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{self.code}: {self.message} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}"
        )
        body = jsonify(
            error=self.error,
            error_description=description,
            error_codes=[self.code],
            timestamp=stamp,
            trace_id=trace,
            correlation_id=correlation,
            error_uri=f"https://login.microsoftonline.com/error?code={self.code}",
        )
        return body, self.status


# --- admin consent ------------------------------------------------------------------------------


@login_bp.route("/<tenant>/v2.0/adminconsent", methods=["GET", "POST"])
@login_bp.route("/<tenant>/adminconsent", methods=["GET", "POST"])
def adminconsent(tenant: str) -> BaseResponse | tuple[str, int] | str:
    """承諾 / キャンセル page; `organizations` lets the admin pick the sandbox tenant."""
    state = current_state()
    params = request.values
    if params.get("client_id") != MS_CLIENT_ID:
        message = f"Application with identifier '{params.get('client_id', '')}' was not found."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS700016")
    redirect_uri = params.get("redirect_uri") or f"{state.settings.portal_url}/teams/oauth/callback"
    if not is_registered_redirect(redirect_uri, state.settings.portal_url):
        message = "The redirect URI specified in the request does not match the redirect URIs."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS50011")
    choosable = tenant.lower() in ("organizations", "common")
    with state.lock:
        tenants = list(state.microsoft.tenants.values())
        fixed = None if choosable else state.microsoft.tenant_for(tenant)
    if not choosable and fixed is None:
        message = f"Tenant '{tenant}' not found."
        return error_page("サインインできませんでした", message, 400, "microsoft", "AADSTS90002")
    scope = params.get("scope", "")
    oauth_state = params.get("state")
    if request.method == "POST":
        if params.get("decision") != "allow":
            description = "AADSTS65004: User declined to consent to access the app."
            return redirect_to(
                redirect_uri,
                {"error": "access_denied", "error_description": description, "state": oauth_state},
            )
        chosen = fixed or state.microsoft.tenant_for(params.get("tenant_choice", ""))
        if chosen is None:
            return error_page("サインインできませんでした", "テナントを選択してください。", 400)
        with state.lock:
            chosen.consented = True
        answer = {"tenant": chosen.tenant_id, "admin_consent": "True"}
        if "/v2.0/" in request.path:
            answer["scope"] = scope
        return redirect_to(redirect_uri, {**answer, "state": oauth_state})
    return render_template(
        "microsoft_adminconsent.html", tenants=tenants, fixed=fixed, app_name=MS_APP_NAME
    )


# --- token endpoint -----------------------------------------------------------------------------


def _client_credentials() -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _graph_token(state: SandboxState, tenant_key: str) -> tuple[str, int]:
    tenant = state.microsoft.tenant_for(tenant_key)
    if tenant is None:
        raise AADError("invalid_request", 90002, f"Tenant '{tenant_key}' not found.")
    if not tenant.consented:
        raise AADError(
            "unauthorized_client",
            700016,
            f"Application with identifier '{MS_CLIENT_ID}' was not found in the directory "
            f"'{tenant.name}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant.",
        )
    ttl = state.settings.microsoft_token_ttl
    claims = _app_claims(ttl, GRAPH_RESOURCE, tenant.tenant_id)
    claims["roles"] = state.settings.graph_roles()
    return _sign_and_record(state, "graph", claims, tenant.tenant_id, GRAPH_RESOURCE), ttl


def _bot_token(state: SandboxState, tenant_key: str) -> tuple[str, int]:
    tenant: Tenant | None = None
    if tenant_key.lower() not in BOTFRAMEWORK_TENANTS:
        # Single-tenant bots ask their own tenant for the token.
        tenant = state.microsoft.tenant_for(tenant_key)
        if tenant is None:
            raise AADError("invalid_request", 90002, f"Tenant '{tenant_key}' not found.")
    tenant_id = tenant.tenant_id if tenant else BOTFRAMEWORK_TENANT_ID
    ttl = state.settings.botframework_token_ttl
    claims = _app_claims(ttl, BOTFRAMEWORK_RESOURCE, tenant_id)
    return _sign_and_record(state, "botframework", claims, tenant_id, BOTFRAMEWORK_RESOURCE), ttl


def _app_claims(ttl: int, audience: str, tenant_id: str) -> dict[str, Any]:
    claims = base_claims(ttl)
    claims.update(
        aud=audience,
        iss=f"https://sts.windows.net/{tenant_id}/",
        appid=MS_CLIENT_ID,
        app_displayname=MS_APP_NAME,
        idtyp="app",
        oid=SERVICE_PRINCIPAL_OID,
        sub=SERVICE_PRINCIPAL_OID,
        tid=tenant_id,
        ver="1.0",
    )
    return claims


def _sign_and_record(
    state: SandboxState, kind: str, claims: dict[str, Any], tenant_id: str, audience: str
) -> str:
    value = state.keys.identity.sign(claims)
    state.issue_token(
        provider="microsoft",
        kind=kind,
        value=value,
        owner=tenant_id,
        client_id=MS_CLIENT_ID,
        scopes=[f"{audience}/.default"],
        expires_at=float(claims["exp"]),
    )
    return value


@login_bp.post("/<tenant>/oauth2/v2.0/token")
def token(tenant: str) -> Response | tuple[Response, int]:
    """Client-credentials grant (the only one the portal needs)."""
    state = current_state()
    client_id, secret = _client_credentials()
    try:
        if client_id != MS_CLIENT_ID:
            raise AADError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if secret != MS_CLIENT_SECRET:
            raise AADError("invalid_client", 7000215, "Invalid client secret provided.", 401)
        grant = request.form.get("grant_type")
        if grant in USER_GRANTS:
            with state.lock:
                return jsonify(USER_GRANTS[grant](state, tenant, request.form))
        if grant != "client_credentials":
            raise AADError(
                "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        scopes = request.form.get("scope", "").split()
        with state.lock:
            if scopes == [f"{GRAPH_RESOURCE}/.default"]:
                value, ttl = _graph_token(state, tenant)
            elif scopes == [f"{BOTFRAMEWORK_RESOURCE}/.default"]:
                value, ttl = _bot_token(state, tenant)
            else:
                raise AADError(
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must "
                    "have a scope value with /.default suffixed to the resource identifier.",
                )
    except AADError as failure:
        return failure.response()
    return jsonify(token_type="Bearer", expires_in=ttl, ext_expires_in=ttl, access_token=value)


# --- OpenID metadata ----------------------------------------------------------------------------


@login_bp.get("/<tenant>/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str) -> Response | tuple[Response, int]:
    """Tenant discovery document (msal reads token_endpoint from here)."""
    state = current_state()
    generic = tenant.lower() in ("organizations", "common", *BOTFRAMEWORK_TENANTS)
    with state.lock:
        found = state.microsoft.tenant_for(tenant)
    if not generic and found is None:
        failure = AADError("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        return failure.response()
    api = request.host_url.rstrip("/") + "/microsoft/login"
    pages = state.settings.http_url + "/microsoft/login"
    tenant_id = found.tenant_id if found else "{tenantid}"
    return jsonify(
        token_endpoint=f"{api}/{tenant}/oauth2/v2.0/token",
        token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
        jwks_uri=f"{api}/{tenant}/discovery/v2.0/keys",
        response_modes_supported=["query", "fragment", "form_post"],
        subject_types_supported=["pairwise"],
        id_token_signing_alg_values_supported=["RS256"],
        response_types_supported=["code", "id_token", "code id_token", "id_token token"],
        scopes_supported=["openid", "profile", "email", "offline_access"],
        issuer=f"https://login.microsoftonline.com/{tenant_id}/v2.0",
        authorization_endpoint=f"{pages}/{tenant}/oauth2/v2.0/authorize",
        tenant_region_scope="AS",
        cloud_instance_name="microsoftonline.com",
    )


@login_bp.get("/<tenant>/discovery/v2.0/keys")
@login_bp.get("/<tenant>/discovery/keys")
def identity_keys(tenant: str) -> Response:
    """JWKS of the identity key (signs Graph and Bot Framework access tokens)."""
    return jsonify(keys=[current_state().keys.identity.jwk()])


@botframework_bp.get("/v1/.well-known/openidconfiguration")
def botframework_openid() -> Response:
    """The channel's OpenID metadata (what the portal validates inbound activities with)."""
    base = request.host_url.rstrip("/") + "/microsoft/botframework"
    return jsonify(
        issuer=BOTFRAMEWORK_ISSUER,
        authorization_endpoint="https://invalid.botframework.com",
        jwks_uri=f"{base}/v1/.well-known/keys",
        id_token_signing_alg_values_supported=["RS256"],
        token_endpoint_auth_methods_supported=["private_key_jwt"],
    )


@botframework_bp.get("/v1/.well-known/keys")
def botframework_keys() -> Response:
    """The channel's signing keys, endorsed for msteams."""
    return jsonify(keys=[current_state().keys.channel.jwk()])
