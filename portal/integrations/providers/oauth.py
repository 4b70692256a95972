"""The generic OAuth 2.0 steps every provider's wizard reuses: authorize and callback.

A provider declares an :class:`OAuthSpec` and implements :meth:`OAuthExchanger.exchange_code`
(Slack with slack_sdk, Chatwork with requests-oauthlib, …); the steps do the rest:

- :class:`OAuthAuthorizeStep` issues a fresh ``state`` (``secrets.token_urlsafe(32)``, 256 bits,
  stored hashed), a PKCE S256 verifier when the provider supports it, and sends the browser to
  the provider — a top-level navigation (``HX-Redirect`` when HTMX asked). The same step sends
  Teams' admin to Entra's admin-consent page (no PKCE, a path under the configured URL).
- :class:`OAuthCallbackStep` handles the provider's answer after the engine has checked and
  consumed the state (``SetupPipeline.from_callback``): a refusal ends the wizard with a clear
  message, a code is exchanged at the token endpoint with the same ``redirect_uri`` and the
  verifier, and the token response is bound as ``"token"``.

Mix-up defence (RFC 9700 §4.4.2): each provider has its own redirect URI,
``PUBLIC_BASE_URL + /<key>/oauth/callback``, and the state record remembers which provider it
was issued for; a state arriving on another provider's URI is refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from ..wizard import Step, StepResult, Wizard, advance, error, leave
from .base import ProviderError


@dataclass(frozen=True)
class OAuthSpec:
    """Where and how a provider authorizes: config key of the authorize URL, scopes, PKCE."""

    provider_key: str
    authorize_url_setting: str
    scopes: tuple[str, ...]
    client_id_setting: str
    pkce: bool = True
    #: How scopes are joined in the URL (Slack: comma; RFC 6749: space).
    scope_separator: str = " "
    #: Issuer to compare with an ``iss`` response parameter (RFC 9207), when the provider has one.
    issuer: str | None = None
    extra_params: Mapping[str, str] = field(default_factory=dict)
    #: Appended to the configured authorize URL (Teams: ``/organizations/v2.0/adminconsent``).
    authorize_path: str = ""
    #: Settings that must be set besides the client id before anyone is sent to the provider
    #: (Teams: the client secret every later token request needs).
    required_settings: tuple[str, ...] = ()

    def redirect_uri(self) -> str:
        """The one exact redirect URI registered for this provider."""
        base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
        return f"{base}/{self.provider_key}/oauth/callback"


def member_redirect_uri(provider_key: str) -> str:
    """The redirect URI of members' own sign-in with a provider (``/me/accounts``): its own
    per provider, and apart from the admin's, so a state can only come back where it went."""
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    return f"{base}/me/accounts/{provider_key}/callback"


class OAuthExchanger(Protocol):
    """What a provider implements for the callback step."""

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        """Swap the code for tokens; raise :class:`ProviderError` when the provider refuses."""
        ...


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (86 characters) and its S256 challenge (RFC 7636 §4.1–4.2)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthAuthorizeStep(Step):
    """Send the browser to the provider's consent page with state (and PKCE)."""

    auto = True

    def __init__(
        self, spec: OAuthSpec, title: str | LazyString | None = None, name: str = "authorize"
    ) -> None:
        self.spec = spec
        self.title = title or _l("Allow access")
        #: Also the last segment of the step's URL (Slack: ``…/slack/install``).
        self.name = name

    def client_id(self, wizard: Wizard) -> str | None:
        """The OAuth client id: the service's own app from config (Slack). A provider whose
        customers register their own client (Chatwork) reads it from the wizard's data."""
        value = current_app.config.get(self.spec.client_id_setting)
        return str(value) if value else None

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        """Issue state (+ verifier), remember the redirect URI, redirect to the provider."""
        config = current_app.config
        client_id = self.client_id(wizard)
        if not client_id or not all(config.get(key) for key in self.spec.required_settings):
            return error(_("This chat tool is not configured on this server."), 503)
        redirect_uri = self.spec.redirect_uri()
        params: dict[str, str] = {
            "client_id": str(client_id),
            "scope": self.spec.scope_separator.join(self.spec.scopes),
            "redirect_uri": redirect_uri,
            "state": wizard.issue_state(),
            **self.spec.extra_params,
        }
        if self.spec.pkce:
            verifier, challenge = pkce_pair()
            wizard.bind("code_verifier", verifier)
            params.update(code_challenge=challenge, code_challenge_method="S256")
        wizard.bind("redirect_uri", redirect_uri)
        url = str(config[self.spec.authorize_url_setting])
        if self.spec.authorize_path:
            url = url.rstrip("/") + self.spec.authorize_path
        separator = "&" if "?" in url else "?"
        return leave(f"{url}{separator}{urlencode(params)}")


class OAuthCallbackStep(Step):
    """Handle the provider's redirect: refusal, or code → tokens (bound as ``"token"``)."""

    name = "callback"

    def __init__(
        self, spec: OAuthSpec, exchanger: OAuthExchanger, title: str | LazyString | None = None
    ) -> None:
        self.spec = spec
        self.exchanger = exchanger
        self.title = title or _l("Finish the connection")

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        """``form`` is the callback's query string."""
        issuer = form.get("iss")
        if issuer is not None and issuer != self.spec.issuer:
            # RFC 9207: an authorization response from another server than the one we asked.
            return error(_("The response came from an unexpected server."))
        if form.get("error"):
            if form["error"] == "access_denied":
                return error(_("The connection was cancelled on the chat tool's page."), None)
            return error(
                _("The chat tool refused the connection (%(code)s).", code=form["error"][:64])
            )
        code = form.get("code")
        if not code or len(code) > 512:
            return error(_("The response from the provider had no authorization code."))
        try:
            token = self.exchange(
                wizard,
                code=code,
                redirect_uri=str(wizard.fetch("redirect_uri") or self.spec.redirect_uri()),
                code_verifier=wizard.fetch("code_verifier"),
            )
        except ProviderError as problem:
            return error(
                _(
                    "The chat tool did not accept the connection (%(code)s). Please start again.",
                    code=problem.code,
                ),
                502,
            )
        wizard.bind("token", token)
        return advance()

    def exchange(
        self, wizard: Wizard, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        """Call the exchanger. A provider whose client credentials live in the wizard's own
        (state-bound) data overrides this to use exactly those (reliability.md OA-18)."""
        return self.exchanger.exchange_code(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )
