"""Inbound Bot Framework authentication: the JWT the Bot Connector puts on every activity.

What botbuilder's ``JwtTokenValidation`` / ``ChannelValidation`` check, re-done with PyJWT
(providers.md §3.7, reliability.md WH-11…WH-18), every failure a :class:`BotAuthError`:

1. ``Authorization: Bearer <JWT>``;
2. header ``alg`` in RS256/RS384/RS512 only (no ``none``, no HMAC: algorithm confusion);
3. the signing key by ``kid`` from the JWKS the OpenID metadata (``BOTFRAMEWORK_OPENID_URL``)
   names; the set is cached for a day and refetched at most once per hour for an unknown
   ``kid`` (PyJWKClient's cooldown), so a flood of forged ``kid`` values cannot hammer it;
4. the key's ``endorsements`` include the activity's ``channelId`` (``msteams``);
5. signature, ``iss == https://api.botframework.com``, ``aud ==`` MS_APP_ID, ``exp``/``nbf``
   with five minutes of clock skew;
6. the ``serviceurl`` claim equals the activity's ``serviceUrl``, and that URL is HTTPS on a
   host of ``TEAMS_SERVICE_URL_HOSTS`` (the same allow-list guards outbound sends, WH-19).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from flask import current_app

log = logging.getLogger("portal.integrations.teams.auth")

ISSUER = "https://api.botframework.com"
ALGORITHMS = ("RS256", "RS384", "RS512")
CLOCK_SKEW = 300
#: The OpenID metadata and the key set are re-read daily (botbuilder does the same)…
METADATA_TTL = 24 * 3600.0
#: …and an unknown ``kid`` triggers at most one refetch per hour (WH-17).
REFETCH_COOLDOWN = 3600.0
MAX_TOKEN_LENGTH = 8192


class BotAuthError(Exception):
    """The request is not from the Bot Framework channel; ``reason`` is logged, never shown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def allowed_service_url(url: object) -> bool:
    """Whether ``url`` is an HTTPS URL on a ``TEAMS_SERVICE_URL_HOSTS`` host.

    Entries are exact host names, or ``.example.net`` for any subdomain of example.net.
    """
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    for entry in service_url_hosts():
        if entry.startswith(".") and host.endswith(entry):
            return True
        if host == entry:
            return True
    return False


def service_url_hosts() -> list[str]:
    """The configured allow-list, lower-cased."""
    raw = str(current_app.config.get("TEAMS_SERVICE_URL_HOSTS") or "")
    return [h.strip().lower() for h in raw.split(",") if h.strip()]


class _KeySource:
    """The JWKS named by one OpenID metadata URL, with PyJWT's caching JWKS client."""

    def __init__(self, metadata_url: str, ca_bundle: str | None) -> None:
        self.metadata_url = metadata_url
        self.ca_bundle = ca_bundle
        self.lock = threading.Lock()
        self.client: jwt.PyJWKClient | None = None
        self.loaded_at = 0.0

    def _jwks_client(self) -> jwt.PyJWKClient:
        with self.lock:
            if self.client is None or time.monotonic() - self.loaded_at > METADATA_TTL:
                try:
                    answer = requests.get(
                        self.metadata_url, timeout=10, verify=self.ca_bundle or True
                    )
                    answer.raise_for_status()
                    jwks_uri = answer.json()["jwks_uri"]
                except (requests.RequestException, ValueError, KeyError, TypeError) as problem:
                    raise BotAuthError(
                        f"openid metadata unavailable: {type(problem).__name__}"
                    ) from None
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
                    raise BotAuthError("openid metadata names no https jwks_uri")
                context = ssl.create_default_context(cafile=self.ca_bundle or None)
                self.client = jwt.PyJWKClient(
                    jwks_uri,
                    cache_jwk_set=True,
                    lifespan=METADATA_TTL,
                    timeout=10,
                    ssl_context=context,
                    cooldown_duration=REFETCH_COOLDOWN,
                )
                self.loaded_at = time.monotonic()
            return self.client

    def key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._jwks_client().get_signing_key(kid)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as problem:
            # Unknown kid after the refetch, an empty or malformed set, the endpoint down.
            raise BotAuthError(f"no signing key: {type(problem).__name__}") from None


_sources: dict[tuple[str, str | None], _KeySource] = {}
_sources_lock = threading.Lock()


def _source() -> _KeySource:
    config = current_app.config
    key = (str(config["BOTFRAMEWORK_OPENID_URL"]), config.get("PROVIDER_CA_BUNDLE") or None)
    with _sources_lock:
        if key not in _sources:
            _sources[key] = _KeySource(*key)
        return _sources[key]


def reset_key_cache() -> None:
    """Forget every cached key set (tests; a key-rotation emergency)."""
    with _sources_lock:
        _sources.clear()


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header, or :class:`BotAuthError`."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise BotAuthError("no bearer token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise BotAuthError("token too long")
    return token


class VerifiedToken:
    """A Bot Framework token whose signature and claims passed; the activity is checked next."""

    def __init__(self, claims: dict[str, Any], endorsements: list[str]) -> None:
        self.claims = claims
        self.endorsements = endorsements


def verify_token(authorization: str | None) -> VerifiedToken:
    """Steps 1–3 and 5: everything that needs only the header, so it runs before the body is
    read or parsed (an anonymous client never reaches the JSON parser)."""
    token = bearer_token(authorization)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise BotAuthError("undecodable token") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS:
        raise BotAuthError("algorithm not allowed")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise BotAuthError("no kid")
    key = _source().key(kid)
    endorsements = getattr(key, "_jwk_data", {}).get("endorsements") or []
    app_id = current_app.config.get("MS_APP_ID")
    if not app_id:
        raise BotAuthError("MS_APP_ID not configured")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=str(app_id),
            issuer=ISSUER,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as problem:
        raise BotAuthError(f"invalid token: {type(problem).__name__}") from None
    return VerifiedToken(claims, [e for e in endorsements if isinstance(e, str)])


def check_activity(token: VerifiedToken, activity: Mapping[str, Any]) -> None:
    """Steps 4 and 6: the parsed activity belongs to the verified token."""
    channel = activity.get("channelId")
    if not isinstance(channel, str) or not channel or channel not in token.endorsements:
        raise BotAuthError("key not endorsed for the channel")
    service_url = activity.get("serviceUrl")
    if token.claims.get("serviceurl") != service_url:
        raise BotAuthError("serviceurl claim does not match the activity")
    if not allowed_service_url(service_url):
        raise BotAuthError("serviceUrl host not allowed")
