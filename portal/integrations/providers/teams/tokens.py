"""Microsoft tokens for the app: client credentials from msal, per tenant and for the bot.

One msal app (and so one in-memory token cache) per authority and credentials, per process;
msal serves a cached token until five minutes before it expires. Only the sandbox's CA is ever
trusted besides the system's (``PROVIDER_CA_BUNDLE``).
"""

from __future__ import annotations

import hashlib
import threading

import jwt
import msal
import requests
from flask import current_app

from ..base import ProviderAuthError, TemporaryProviderError

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_SCOPE = "https://api.botframework.com/.default"
TIMEOUT = 15

_apps: dict[tuple[str, str, str, str | None], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def _ca_bundle() -> str | None:
    return current_app.config.get("PROVIDER_CA_BUNDLE") or None


def verify() -> str | bool:
    """``verify=`` per request: REQUESTS_CA_BUNDLE would otherwise override a Session's."""
    return _ca_bundle() or True


def msal_app(tenant: str) -> msal.ConfidentialClientApplication:
    """One msal app (and so one token cache) per authority and credentials, per process."""
    config = current_app.config
    client_id, secret = config.get("MS_APP_ID"), config.get("MS_CLIENT_SECRET")
    if not client_id or not secret:
        raise ProviderAuthError("Microsoft app not configured", code="not_configured")
    authority = f"{str(config['MS_LOGIN_URL']).rstrip('/')}/{tenant}"
    bundle = _ca_bundle()
    key = (authority, str(client_id), hashlib.sha256(str(secret).encode()).hexdigest(), bundle)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            session = requests.Session()
            if bundle:
                # Only the sandbox CA: the environment's CA variables must not override it.
                session.trust_env = False
                session.verify = bundle
            try:
                app = msal.ConfidentialClientApplication(
                    str(client_id),
                    client_credential=str(secret),
                    authority=authority,
                    http_client=session,
                    instance_discovery=False,
                    timeout=TIMEOUT,
                )
            except (ValueError, requests.RequestException) as problem:
                # Tenant discovery failed: an unknown tenant, or the login service is down.
                if isinstance(problem, requests.RequestException):
                    raise TemporaryProviderError(
                        "Microsoft login unreachable", code="login_unreachable"
                    ) from None
                raise ProviderAuthError("unknown tenant", code="invalid_tenant") from None
            _apps[key] = app
        return app


def acquire_token(tenant: str, scope: str) -> str:
    """A client-credentials access token for ``tenant`` (cached by msal until near expiry)."""
    app = msal_app(tenant)
    try:
        result = app.acquire_token_for_client(scopes=[scope])
    except requests.RequestException:
        raise TemporaryProviderError(
            "Microsoft login unreachable", code="login_unreachable"
        ) from None
    token = (result or {}).get("access_token")
    if token:
        return str(token)
    code = str((result or {}).get("error") or "token_error")[:64]
    if code in ("temporarily_unavailable", "server_error"):
        raise TemporaryProviderError("Microsoft login unavailable", code=code)
    # unauthorized_client (no consent in that tenant), invalid_client (secret), invalid_tenant…
    raise ProviderAuthError("Microsoft refused the app's credentials", code=code)


def forget_tokens(tenant: str) -> None:
    """Drop the cached tokens for ``tenant`` (after a 401, or on disconnect)."""
    config = current_app.config
    authority = f"{str(config['MS_LOGIN_URL']).rstrip('/')}/{tenant}"
    with _apps_lock:
        for key, app in list(_apps.items()):
            if key[0] == authority:
                app.remove_tokens_for_client()


def bot_tenant() -> str:
    """Where the bot's own token comes from: ``botframework.com`` for a multi-tenant bot."""
    return str(current_app.config.get("MS_BOT_TENANT_ID") or "botframework.com")


def token_tenant_id(token: str) -> str | None:
    """The ``tid`` claim of an access token we were just issued over TLS (not re-verified)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    tid = claims.get("tid")
    return str(tid).lower() if tid else None
