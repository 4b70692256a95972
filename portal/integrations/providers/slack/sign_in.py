"""Sign in with Slack (OpenID Connect): a member proves which Slack user they are.

The flow (docs.slack.dev, "Sign in with Slack"): the browser goes to
``/openid/connect/authorize`` with the user scopes ``openid email profile``, a ``nonce`` and
a ``state``; ``openid.connect.token`` swaps the code for a user token and an RS256 ``id_token``,
which is verified here against Slack's published keys (signature, issuer, audience, expiry,
our nonce); ``openid.connect.userInfo`` then names the user, and must name the same one.

The member is linked on (team, user id): an id_token for another workspace than the
company's is refused, however valid it is. On Enterprise Grid the org-level id is accepted
too, since the integration's team id is then one workspace of the enterprise.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any
from urllib.parse import urlencode

import jwt
from flask import current_app
from flask_babel import gettext as _

from ...models import Integration
from ..base import DirectoryEntry, MemberSignIn, ProviderError, SignInRefused, SignInRequest
from .client import call_slack, web_client

ISSUER = "https://slack.com"
SCOPES = ("openid", "email", "profile")
TEAM_CLAIM = "https://slack.com/team_id"
ENTERPRISE_CLAIM = "https://slack.com/enterprise_id"
USER_CLAIM = "https://slack.com/user_id"
#: Slack rotates its signing keys rarely; refetch the set at most hourly (and on an unknown
#: ``kid``, which PyJWKClient does by itself).
KEYS_TTL = 3600

_clients: dict[tuple[str, str | None], jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def _keys() -> jwt.PyJWKClient:
    config = current_app.config
    url = str(config["SLACK_OPENID_KEYS_URL"])
    ca_bundle = config.get("PROVIDER_CA_BUNDLE") or None
    with _clients_lock:
        if (url, ca_bundle) not in _clients:
            _clients[(url, ca_bundle)] = jwt.PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=KEYS_TTL,
                timeout=10,
                ssl_context=ssl.create_default_context(cafile=ca_bundle),
            )
        return _clients[(url, ca_bundle)]


def verify_id_token(token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
    """The id_token's claims once its signature, issuer, audience, expiry and nonce hold;
    :class:`SignInRefused` otherwise (the member sees a plain "could not verify")."""
    try:
        key = _keys().get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as problem:
        raise SignInRefused(
            _("Slack's answer could not be verified (%(reason)s). Please try again.",
              reason=type(problem).__name__)
        ) from None  # fmt: skip
    if claims.get("nonce") != nonce:
        raise SignInRefused(_("Slack's answer belongs to another sign-in. Please try again."))
    return claims


class SlackSignIn(MemberSignIn):
    """:class:`~..base.MemberSignIn` for Slack."""

    def authorize_url(self, integration: Integration, request: SignInRequest) -> str:
        config = current_app.config
        params = {
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "client_id": str(config["SLACK_CLIENT_ID"]),
            "state": request.state,
            "nonce": request.nonce,
            "redirect_uri": request.redirect_uri,
            # Slack shows the sign-in for this workspace first.
            "team": integration.external_id or "",
        }
        url = str(config["SLACK_OPENID_AUTHORIZE_URL"])
        return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

    def identify(
        self,
        integration: Integration,
        *,
        code: str,
        redirect_uri: str,
        nonce: str,
        code_verifier: str,
    ) -> DirectoryEntry:
        config = current_app.config
        client_id = str(config["SLACK_CLIENT_ID"])
        answer = call_slack(
            lambda: web_client().openid_connect_token(
                client_id=client_id,
                client_secret=str(config["SLACK_CLIENT_SECRET"]),
                code=code,
                redirect_uri=redirect_uri,
            )
        )
        id_token = answer.get("id_token")
        access_token = answer.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise ProviderError("no id_token", code="no_id_token")
        claims = verify_id_token(id_token, client_id=client_id, nonce=nonce)
        teams = {claims.get(TEAM_CLAIM), claims.get(ENTERPRISE_CLAIM)} - {None}
        if integration.external_id not in teams:
            raise SignInRefused(
                _("You signed in to another Slack workspace than your company's (%(workspace)s). "
                  "Sign in to %(workspace)s and try again.",
                  workspace=integration.display_name or integration.external_id)
            )  # fmt: skip
        info = call_slack(lambda: web_client(access_token).openid_connect_userInfo()).data
        if not isinstance(info, dict) or info.get(USER_CLAIM) != claims.get(USER_CLAIM):
            raise ProviderError("userInfo names another user", code="user_mismatch")
        user_id = str(claims[USER_CLAIM])
        name = str(info.get("name") or claims.get("name") or user_id)[:200]
        email = info.get("email") if info.get("email_verified") else None
        return DirectoryEntry(
            external_id=user_id,
            name=name,
            email=str(email).strip().lower()[:254] if isinstance(email, str) else None,
        )
