"""Chatwork's setup wizard: the organization's own OAuth client, then consent as the account.

The vendor's "ChatWorkの連携方法": the admin registers an OAuth client on Chatwork
(Confidential, redirect URI ``PUBLIC_BASE_URL + /chatwork/oauth/callback``, the four
:data:`SCOPES`), enters its client ID and secret here ("この内容で保存する"), and allows access on
Chatwork's consent page. The client credentials are the organization's own: sealed in the
wizard's state until the consent succeeds, then sealed to the integration
(``secrets["client_secret"]``, never rendered).

A wrong client ID shows Chatwork's error page; the admin comes back with the browser and
corrects the ID only: the secret typed in the same attempt is kept (:class:`KeptClient`). A
refused exchange goes back to the client form with the message (``back("client", …)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ....accounts.models import User
from ....database import utcnow
from ....extensions import db
from ...models import Integration
from ...wizard import (
    Attempt,
    SetupError,
    Step,
    StepResult,
    Wizard,
    advance,
    back,
    error,
    invalid,
)
from ..base import ConnectionData, ProviderError
from ..oauth import (
    OAuthAuthorizeStep,
    OAuthCallbackStep,
    OAuthExchanger,
    OAuthSpec,
    member_redirect_uri,
)
from .client import api_call, parse_expiry, token_request

#: What the portal needs, no more (providers.md §2.1): a permanent refresh token, who is
#: connected, posting to direct chats, and the contacts — read and write, since the portal
#: accepts the contact requests members send when they link themselves (``sign_in.py``).
SCOPES = (
    "offline_access",
    "users.profile.me:read",
    "rooms.messages:write",
    "contacts.all:read_write",
)
#: The client name suggested for Chatwork's registration screen.
CLIENT_NAME = "Chat Connect"
#: Client IDs on Chatwork are URL-safe tokens; anything else is a typo or a pasted secret.
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._~\-]{8,128}")
#: Words that make a connected account look like a dedicated notification account.
DEDICATED_HINTS = ("通知", "お知らせ", "notify", "notification", "bot", "ボット", "system",
                   "システム", "wistant", "chat connect", "noreply", "no-reply")  # fmt: skip
#: A failed wizard's client ID is offered again, and a secret typed in it kept, for this long.
KEEP_FORM_FOR = timedelta(hours=1)

CHATWORK_SPEC = OAuthSpec(
    provider_key="chatwork",
    authorize_url_setting="CHATWORK_AUTHORIZE_URL",
    # Unused: each organization brings its own client (ChatworkAuthorizeStep.client_id).
    client_id_setting="CHATWORK_CLIENT_ID",
    scopes=SCOPES,
    scope_separator=" ",
    pkce=True,
    extra_params={"response_type": "code"},
)


def setup_steps(exchanger: OAuthExchanger) -> list[Step]:
    """Step 3 (the client), the consent on Chatwork, and the callback."""
    return [
        ClientCredentialsStep(),
        ChatworkAuthorizeStep(CHATWORK_SPEC, title=_l("Allow on Chatwork")),
        ChatworkCallbackStep(CHATWORK_SPEC, exchanger, title=_l("Finish the connection")),
    ]


def registration_values() -> dict[str, Any]:
    """What steps 1–2 show: the values to enter on Chatwork and the links to its screens."""
    base = str(current_app.config["CHATWORK_WWW_URL"]).rstrip("/")
    return {
        "client_name": CLIENT_NAME,
        "redirect_uri": CHATWORK_SPEC.redirect_uri(),
        "member_redirect_uri": member_redirect_uri("chatwork"),
        "scopes": SCOPES,
        "registration_url": f"{base}/service/packages/chatwork/subpackages/oauth/client_create.php",
        "contacts_url": f"{base}/contacts.php",
    }


# --- the client form, kept ----------------------------------------------------------------


def _saved_client(integration: Integration | None) -> tuple[str, str | None]:
    """The connection's client ID and (sealed) secret, if it still has them."""
    if integration is None:
        return "", None
    client_id = str((integration.config or {}).get("client_id") or "")
    try:
        secret = integration.get_secrets().get("client_secret")
    except Exception:  # an unreadable secret is simply not offered again
        secret = None
    return client_id, str(secret) if secret else None


def _typed_recently(value: Any) -> str | None:
    """``secret_typed_at`` when it is within :data:`KEEP_FORM_FOR`, else ``None``."""
    try:
        typed_at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return str(value) if typed_at > utcnow() - KEEP_FORM_FOR else None


@dataclass(frozen=True)
class KeptClient:
    """The client form's state: the ID it shows and the secret a blank field keeps (never shown).

    The secret typed in this setup attempt — this wizard, or this admin's last one in this
    browser session, up to :data:`KEEP_FORM_FOR` after typing — is kept whatever client ID comes
    with it: the seed's way out of a wrong ID is Chatwork's error page, the browser's back button
    and the correct ID only. The connection's own secret belongs to its client: kept for that ID
    only. Another browser session, admin or organization never finds a wizard's secret (the
    engine finds only this admin's wizards in this browser, sealed to them).
    """

    client_id: str = ""
    typed_secret: str | None = None
    typed_at: str | None = None
    saved_id: str = ""
    saved_secret: str | None = None

    def secret_for(self, client_id: str) -> tuple[str | None, str | None]:
        """The secret a blank field stands for with ``client_id``, and when it was typed."""
        if self.typed_secret:
            return self.typed_secret, self.typed_at
        if self.saved_secret and client_id == self.saved_id:
            return self.saved_secret, None
        return None, None

    def form(self, client_id: str | None = None) -> dict[str, Any]:
        """The form's values: a blank secret is kept with any ID, or only with the saved one."""
        return {
            "client_id": self.client_id if client_id is None else client_id,
            "secret_set": bool(self.typed_secret or self.saved_secret),
            "secret_for_id": not self.typed_secret and bool(self.saved_secret),
        }


def kept_client(integration: Integration | None, attempt: Attempt | None) -> KeptClient:
    """The client entered last: in ``attempt`` (this admin's live wizard, or their latest one
    if it started within :data:`KEEP_FORM_FOR`), else the connection's."""
    saved_id, saved_secret = _saved_client(integration)
    if (
        attempt is None
        or attempt.fetch("client_id") is None
        or (not attempt.live and attempt.started_at <= utcnow() - KEEP_FORM_FOR)
    ):
        return KeptClient(saved_id, saved_id=saved_id, saved_secret=saved_secret)
    typed_at = _typed_recently(attempt.fetch("secret_typed_at"))
    return KeptClient(
        client_id=str(attempt.fetch("client_id")),
        typed_secret=attempt.fetch("client_secret") if typed_at else None,
        typed_at=typed_at,
        saved_id=saved_id,
        saved_secret=saved_secret,
    )


def _integration(organization_id: int) -> Integration | None:
    return db.session.scalar(
        select(Integration).where(
            Integration.organization_id == organization_id, Integration.provider == "chatwork"
        )
    )


# --- the steps ----------------------------------------------------------------------------


class ClientCredentialsStep(Step):
    """Step 3: "クライアントID" and "クライアントシークレット", then "この内容で保存する".

    Posting it starts a fresh wizard. The secret is never echoed: a blank field keeps the one
    typed in this setup attempt (the wizard it replaced), or the connection's for its own ID. A
    typed secret is remembered with ``secret_typed_at`` even when the ID is refused, so the
    admin corrects the ID only, as after Chatwork's error page for a wrong one.
    """

    name = "client"
    title = _l("Enter the client ID and secret")

    def context(self, attempt: Attempt | None, integration: Integration | None) -> dict[str, Any]:
        return {
            "client_form": kept_client(integration, attempt).form(),
            **registration_values(),
        }

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        kept = kept_client(_integration(wizard.organization_id), wizard.previous)
        client_id = str(form.get("client_id") or "").strip() or kept.client_id
        wizard.bind("organization_id", wizard.organization_id)
        kept_secret, kept_typed_at = kept.secret_for(client_id)
        if kept_secret:
            wizard.bind_sealed("client_secret", kept_secret)
        if kept_typed_at:
            wizard.bind("secret_typed_at", kept_typed_at)
        secret = str(form.get("client_secret") or "").strip()
        errors: dict[str, str] = {}
        if not CLIENT_ID_PATTERN.fullmatch(client_id):
            errors["client_id"] = _(
                "Enter the client ID shown on Chatwork's OAuth client screen (letters, digits "
                "and - . _ ~ only)."
            )
        if len(secret) > 256:
            errors["client_secret"] = _("This client secret is too long.")
        elif secret:
            wizard.bind_sealed("client_secret", secret)
            wizard.bind("secret_typed_at", utcnow().isoformat())
        elif not wizard.fetch_sealed("client_secret"):
            errors["client_secret"] = _(
                "Enter the client secret shown on Chatwork's OAuth client screen."
            )
        if errors:
            wizard.bind("client_id", client_id[:128])
            return invalid(errors)
        wizard.bind("client_id", client_id)
        wizard.bind("secret_replaced", bool(secret))
        return advance()


class ChatworkAuthorizeStep(OAuthAuthorizeStep):
    """The consent redirect with the organization's own client ID."""

    def client_id(self, wizard: Wizard) -> str | None:
        value = wizard.fetch("client_id")
        return str(value) if value else None


class ChatworkCallbackStep(OAuthCallbackStep):
    """Exchange with the state record's own credentials, read GET /me; failures go back to
    step 3 with the form kept (cancel: a flash; the rest: the form page with the message)."""

    #: Back from Chatwork without finishing: the client form again, with a hint.
    returns_to = "client"

    def exchange(
        self, wizard: Wizard, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        client_id = str(wizard.fetch("client_id") or "")
        secret = str(wizard.fetch_sealed("client_secret") or "")
        if not client_id or not secret:
            raise ProviderError("no client credentials in the setup", code="no_client")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        token = token_request(client_id, secret, form)
        response = api_call("GET", "/me", str(token["access_token"]))
        wizard.bind("me", response.json())
        return token

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        result = super().post(wizard, form)
        if result.action != "error":
            return result
        if form.get("error") == "access_denied":
            return error(
                _("The connection was cancelled on Chatwork's page. Nothing was saved."), None
            )
        message = result.message
        status = result.status or 400
        if result.status == 502:
            message = _(
                "Chatwork did not accept the client ID and secret, or did not answer. Check "
                "both values on Chatwork's OAuth client screen and save again."
            )
            status = 400
        return back("client", message, status)


# --- the connection -------------------------------------------------------------------------


def looks_dedicated(me: Mapping[str, Any], member_emails: set[str]) -> bool:
    """Whether the connected account looks like a dedicated notification account.

    A personal account is one whose profile e-mail belongs to a member here, or whose name
    carries none of the usual hints (通知, notification, bot…).
    """
    mail = str(me.get("mail") or me.get("login_mail") or "").strip().lower()
    if mail and mail in member_emails:
        return False
    name = str(me.get("name") or "").lower()
    return any(hint in name for hint in DEDICATED_HINTS)


def build_connection(data: Mapping[str, Any]) -> ConnectionData:
    """The connected account (GET /me), the client, and the tokens."""
    token = data.get("token") or {}
    me = data.get("me") or {}
    if not token.get("access_token") or not me.get("account_id"):
        raise SetupError(_("Chatwork did not return an account token. Please start again."))
    granted = set(str(token.get("scope") or "").split())
    missing = [scope for scope in SCOPES if scope not in granted]
    if granted and missing:
        raise SetupError(
            _(
                "Chatwork granted fewer permissions than needed (missing: %(scopes)s). "
                "Add every scope to the OAuth client on Chatwork and save again.",
                scopes=", ".join(missing),
            )
        )
    return ConnectionData(
        external_id=str(me["account_id"]),
        display_name=str(me.get("name") or me["account_id"]),
        config={
            "client_id": data.get("client_id"),
            "account_id": str(me["account_id"]),
            "account_name": me.get("name"),
            "chatwork_id": me.get("chatwork_id"),
            "organization_name": me.get("organization_name"),
            "department": me.get("department"),
            "scopes": sorted(granted),
            "dedicated": looks_dedicated(me, _member_emails(data)),
        },
        secrets={
            "client_secret": data.get("client_secret"),
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token"),
        },
        token_expires_at=parse_expiry(token),
    )


def _member_emails(data: Mapping[str, Any]) -> set[str]:
    """E-mail addresses of the organization's members (to spot a personal account)."""
    organization_id = data.get("organization_id")
    if not organization_id:
        return set()
    return set(
        db.session.scalars(
            select(func.lower(User.email)).where(User.organization_id == organization_id)
        )
    )
