"""Microsoft Teams: Entra ID admin consent, Graph directory, the bot's greeting and DMs.

Vendor setup (one app for the whole service, providers.md §3.1):
- Entra ID app registration, multi-tenant, with a client secret (MS_APP_ID, MS_CLIENT_SECRET);
  application permission ``User.Read.All`` (Graph); redirect URI exactly
  ``PUBLIC_BASE_URL + /teams/oauth/callback``.
- Azure Bot resource on the same app id, Teams channel on, messaging endpoint
  ``PUBLIC_BASE_URL + /teams/messages``.
- A Teams app package whose ``bots[].botId`` is the app id (personal scope), named
  TEAMS_BOT_NAME, published to the customer's org catalog or the Store.
Settings: MS_CONSENT_URL, MS_LOGIN_URL, MS_GRAPH_URL, BOTFRAMEWORK_OPENID_URL,
TEAMS_SERVICE_URL_HOSTS; optional MS_BOT_TENANT_ID (single-tenant bot; default
``botframework.com``) and TEAMS_APP_ID (the manifest id, for the install link).

The customer's tenant is trusted only after a client-credentials Graph token for it was issued
and its ``tid`` is that tenant (reliability.md OA-17). Tokens come from msal, whose in-memory
cache serves them until five minutes before they expire.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jwt
import msal
import requests
from flask import current_app
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ...database import utcnow
from ...extensions import db
from ..botframework import allowed_service_url
from ..models import AccountLink, ChatAccount, Integration, IntegrationState, LinkMethod
from ..pipeline import SetupError, SetupPipeline, Step, StepResult, advance, error, render
from ..registry import providers
from .base import (
    ChatProvider,
    ConnectionData,
    DeliveryResult,
    DirectoryEntry,
    Message,
    PacingBudget,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    RecipientNotFound,
    TemporaryProviderError,
)
from .oauth import top_level_redirect

log = logging.getLogger("portal.integrations.teams")

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_SCOPE = "https://api.botframework.com/.default"
#: Graph /users page size: the maximum $top (1000 is refused).
PAGE_SIZE = 999
USER_FIELDS = "id,displayName,mail,userPrincipalName,accountEnabled,userType"
#: A background sync waits out Graph's Retry-After this many times, then gives up for now.
GRAPH_WAITS = 5
TIMEOUT = 15
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
#: Teams per-app-per-tenant limit is 30 requests/s: 20/s with bursts of 10 never exceeds it in
#: any one-second window.
TENANT_RATE, TENANT_BURST = 20.0, 10
#: Per conversation (one member's chat): 7/1 s, 8/2 s, 60/30 s, 1800/h. 0.49/s with a burst of
#: 7 stays under all four; a short wait is slept, a longer one rescheduled.
CONVERSATION_RATE, CONVERSATION_BURST, CONVERSATION_MAX_SLEEP = 0.49, 7, 2.5
RETRYABLE_STATUSES = frozenset({412, 500, 502, 503, 504})
BUTTON_LABELS = {"ja": "詳細を開く", "en": "Open"}
#: The bot's first words after an install (the seed: 「こんにちは◯◯さん」と表示されたら成功です).
GREETINGS = {"ja": "こんにちは{name}さん", "en": "Hello {name}"}
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


# --- tokens (msal) ------------------------------------------------------------------------------

_apps: dict[tuple[str, str, str, str | None], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def _ca_bundle() -> str | None:
    return current_app.config.get("PROVIDER_CA_BUNDLE") or None


def _verify() -> str | bool:
    """``verify=`` per request: REQUESTS_CA_BUNDLE would otherwise override a Session's."""
    return _ca_bundle() or True


def _msal_app(tenant: str) -> msal.ConfidentialClientApplication:
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
    app = _msal_app(tenant)
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


# --- HTTP helpers ---------------------------------------------------------------------------------


def _error_code(response: requests.Response) -> tuple[str, str | None]:
    """(code, subCode) of a Bot Connector / Graph error body, never the message text."""
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", None
    if not isinstance(body, dict):
        return f"http_{response.status_code}", None
    inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = inner.get("code") or body.get("code") or f"http_{response.status_code}"
    sub = inner.get("subCode") or body.get("subCode")
    return str(code)[:64], (str(sub)[:64] if sub else None)


def _retry_after(response: requests.Response) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(0.0, value)


def _raise_for(response: requests.Response, *, auth_code: str) -> None:
    """Translate a failed answer into the ProviderError tree (no body is ever kept)."""
    status = response.status_code
    if status < 400:
        return
    code, sub = _error_code(response)
    if status == 429:
        raise ProviderRateLimited(
            "Microsoft rate limit", retry_after=_retry_after(response), code="ratelimited"
        )
    if status in RETRYABLE_STATUSES or status >= 500:
        raise TemporaryProviderError("Microsoft is unavailable", code=f"http_{status}")
    if status == 401:
        raise ProviderAuthError("Microsoft refused the token", code=auth_code)
    if status == 403:
        if sub == "MessageWritesBlocked" or code == "ConversationBlockedByUser":
            raise RecipientNotFound(
                "the member removed or blocked the bot", code="MessageWritesBlocked"
            )
        if code in ("BotNotInConversationRoster", "Forbidden"):
            raise RecipientNotFound(
                "the bot is not installed for the member", code="bot_not_installed"
            )
        raise ProviderAuthError("Microsoft refused the call", code=code)
    if status == 404:
        raise RecipientNotFound("conversation or user not found", code="conversation_not_found")
    raise ProviderError("Microsoft refused the call", code=code)


# --- rendering -----------------------------------------------------------------------------------


def render_message(message: Message) -> dict[str, Any]:
    """A message activity with an Adaptive Card (title, body, link) and a text fallback."""
    fallback = f"{message.title}\n{message.body}" + (f"\n{message.url}" if message.url else "")
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "fallbackText": fallback[:4000],
        "body": [
            {
                "type": "TextBlock",
                "text": message.title[:200],
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": message.body[:4000] or " ", "wrap": True},
        ],
    }
    if message.url:
        label = BUTTON_LABELS.get(message.locale, BUTTON_LABELS["en"])
        card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": message.url[:2000]}]
    return {
        "type": "message",
        "summary": message.title[:200],
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    }


# --- the installed side --------------------------------------------------------------------------


class TeamsClient:
    """One customer tenant: Graph with the tenant's token, the Bot Connector with the bot's."""

    def __init__(self, integration: Integration) -> None:
        self.integration = integration
        self.tenant = str(integration.external_id or "")

    # --- Bot Connector ---------------------------------------------------------------------

    def connector(self, service_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the Bot Connector at a stored serviceUrl; never outside the allow-list (WH-19).

        A 401 is retried once with a fresh token (it may have been revoked early).
        """
        if not allowed_service_url(service_url):
            log.warning("refused to send the bot token to a service URL off the allow-list")
            raise ProviderError(
                "the stored service URL is not on the allow-list", code="service_url_not_allowed"
            )
        url = f"{service_url.rstrip('/')}/{path}"
        for attempt in (1, 2):
            token = acquire_token(bot_tenant(), BOT_SCOPE)
            try:
                response = requests.post(
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=TIMEOUT,
                    verify=_verify(),
                    allow_redirects=False,
                )
            except requests.RequestException as problem:
                raise TemporaryProviderError(
                    "Bot Connector unreachable", code=type(problem).__name__
                ) from None
            if response.status_code == 401 and attempt == 1:
                forget_tokens(bot_tenant())
                continue
            _raise_for(response, auth_code="bot_unauthorized")
            try:
                answer = response.json()
            except ValueError:
                return {}
            return answer if isinstance(answer, dict) else {}
        raise AssertionError("unreachable")  # pragma: no cover

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        """Send the card into the member's stored conversation, creating it when we can."""
        activity = render_message(message)
        extra = dict(account.extra or {})
        conversation = extra.get("conversation_id")
        if conversation:
            try:
                return self._send(account, str(conversation), activity)
            except RecipientNotFound as problem:
                if problem.code != "conversation_not_found":
                    raise
                # A stale reference: create the conversation again once, if we can.
        return self._send(account, self.create_conversation(account), activity)

    def _send(
        self, account: ChatAccount, conversation: str, activity: dict[str, Any]
    ) -> DeliveryResult:
        _pace_conversation(conversation)
        answer = self.connector(
            str((account.extra or {}).get("service_url") or ""),
            f"v3/conversations/{quote(conversation, safe=':@')}/activities",
            activity,
        )
        return DeliveryResult(provider_message_id=str(answer.get("id") or "") or None)

    def create_conversation(self, account: ChatAccount) -> str:
        """POST v3/conversations for a member the app is installed for; remember the id.

        Without the member's Teams user id (``29:…``, learnt from an install activity) Teams
        cannot be asked: the member has to add the bot (RecipientNotFound ``bot_not_installed``).
        """
        extra = dict(account.extra or {})
        user_id, service_url = extra.get("teams_user_id"), extra.get("service_url")
        if not user_id or not service_url:
            raise RecipientNotFound("the member has not added the bot", code="bot_not_installed")
        answer = self.connector(
            str(service_url),
            "v3/conversations",
            {
                "bot": {"id": f"28:{current_app.config['MS_APP_ID']}"},
                "members": [{"id": user_id}],
                "channelData": {"tenant": {"id": self.tenant}},
                "isGroup": False,
            },
        )
        conversation = str(answer.get("id") or "")
        if not conversation:
            raise TemporaryProviderError("no conversation id returned", code="no_conversation")
        account.extra = {**extra, "conversation_id": conversation}
        db.session.commit()
        return conversation

    def member(self, service_url: str, conversation: str, user_id: str) -> dict[str, Any]:
        """GET v3/conversations/{id}/members/{userId}: e-mail and UPN of one member."""
        if not allowed_service_url(service_url):
            raise ProviderError("service URL not allowed", code="service_url_not_allowed")
        token = acquire_token(bot_tenant(), BOT_SCOPE)
        url = (
            f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation, safe=':@')}"
            f"/members/{quote(user_id, safe=':@')}"
        )
        try:
            response = requests.get(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, verify=_verify()
            )
        except requests.RequestException:
            raise TemporaryProviderError("Bot Connector unreachable", code="connection") from None
        _raise_for(response, auth_code="bot_unauthorized")
        answer = response.json()
        return answer if isinstance(answer, dict) else {}

    # --- Graph --------------------------------------------------------------------------------

    def graph(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a Graph URL with the tenant's token; a background caller may wait out 429s.

        A 401 is retried once with a fresh token (the cached one may have been revoked).
        """
        base = urlsplit(str(current_app.config["MS_GRAPH_URL"]))
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            # An @odata.nextLink elsewhere never gets the token.
            raise ProviderError("unexpected Graph URL", code="graph_url_not_allowed")
        refreshed = False
        for attempt in range(GRAPH_WAITS + 2):
            token = acquire_token(self.tenant, GRAPH_SCOPE)
            try:
                response = requests.get(
                    url,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=TIMEOUT,
                    verify=_verify(),
                )
            except requests.RequestException as problem:
                raise TemporaryProviderError(
                    "Graph unreachable", code=type(problem).__name__
                ) from None
            if response.status_code == 429 and attempt < GRAPH_WAITS:
                time.sleep(min(_retry_after(response) or 2.0, 30.0))
                continue
            if response.status_code == 401:
                forget_tokens(self.tenant)
                if not refreshed:  # a cached token revoked early: one more try, fresh token
                    refreshed = True
                    continue
            _raise_for(response, auth_code="graph_unauthorized")
            answer = response.json()
            return answer if isinstance(answer, dict) else {}
        raise AssertionError("unreachable")  # pragma: no cover

    def iter_directory(self) -> Iterator[list[DirectoryEntry]]:
        """Graph /users, 999 a page, following @odata.nextLink; disabled accounts skipped."""
        url = f"{str(current_app.config['MS_GRAPH_URL']).rstrip('/')}/v1.0/users"
        params: dict[str, str] | None = {"$select": USER_FIELDS, "$top": str(PAGE_SIZE)}
        while url:
            answer = self.graph(url, params)
            yield [entry for user in answer.get("value") or [] if (entry := _entry(user))]
            url, params = str(answer.get("@odata.nextLink") or ""), None

    def organization_name(self) -> str | None:
        """The tenant's display name (Graph /organization), or None."""
        url = f"{str(current_app.config['MS_GRAPH_URL']).rstrip('/')}/v1.0/organization"
        answer = self.graph(url, {"$select": "id,displayName"})
        values = answer.get("value") or []
        name = values[0].get("displayName") if values and isinstance(values[0], dict) else None
        return str(name)[:200] if name else None

    def revoke(self) -> None:
        """Admin consent cannot be withdrawn by the app: forget tokens, tell the admin."""
        forget_tokens(self.tenant)
        raise ProviderError(
            "admin consent is removed in Entra ID (Enterprise applications)",
            code="revoke_unsupported",
        )


def _entry(user: Mapping[str, Any]) -> DirectoryEntry | None:
    """A Graph user as a directory entry; None for disabled accounts or odd rows."""
    if not isinstance(user, Mapping) or not user.get("id") or user.get("accountEnabled") is False:
        return None
    email = str(user.get("mail") or user.get("userPrincipalName") or "").strip().lower()
    if "#ext#" in email:  # a guest's UPN is not an address
        email = ""
    return DirectoryEntry(
        external_id=str(user["id"])[:128],
        name=str(user.get("displayName") or email or user["id"])[:200],
        email=email[:254] or None,
        extra={"guest": user.get("userType") == "Guest"},
    )


def _pace_conversation(conversation: str) -> None:
    """Stay under Teams' per-conversation limits, shared by every worker (DB token bucket)."""
    from ...notifications import pacing  # the delivery pipeline imports the providers

    budget = PacingBudget(
        f"teams:conversation:{hashlib.sha256(conversation.encode()).hexdigest()[:32]}",
        CONVERSATION_RATE,
        CONVERSATION_BURST,
    )
    wait = pacing.take(budget)
    if wait <= 0:
        return
    if wait > CONVERSATION_MAX_SLEEP:
        raise ProviderRateLimited("conversation paced", retry_after=wait, code="conversation_paced")
    time.sleep(wait)
    if pacing.take(budget) > 0:
        raise ProviderRateLimited("conversation paced", retry_after=1.0, code="conversation_paced")


# --- setup wizard --------------------------------------------------------------------------------


def consent_redirect_uri() -> str:
    """The one registered redirect URI: PUBLIC_BASE_URL + /teams/oauth/callback."""
    return f"{str(current_app.config['PUBLIC_BASE_URL']).rstrip('/')}/teams/oauth/callback"


class AdminConsentStep:
    """「Microsoft Teamsと連携する」: send the admin to Entra's v2 admin consent with a state."""

    name = "consent"
    auto = True
    title = _l("Connect Microsoft Teams")

    def get(self, pipeline: SetupPipeline) -> ResponseReturnValue:
        return pipeline.render_step()

    def post(self, pipeline: SetupPipeline, form: Mapping[str, str]) -> StepResult:
        config = current_app.config
        if not config.get("MS_APP_ID") or not config.get("MS_CLIENT_SECRET"):
            return error(_("This chat tool is not configured on this server."), 503)
        params = {
            "client_id": str(config["MS_APP_ID"]),
            "scope": GRAPH_SCOPE,
            "redirect_uri": consent_redirect_uri(),
            "state": pipeline.issue_state(),
        }
        # "organizations": the admin's own tenant, whichever it is (never "common" on v2).
        base = str(config["MS_CONSENT_URL"]).rstrip("/")
        pipeline.record.step_index += 1  # the next request is the callback
        return render(
            top_level_redirect(f"{base}/organizations/v2.0/adminconsent?{urlencode(params)}")
        )


class AdminConsentCallbackStep:
    """The consent answer: trust the ``tenant`` only once a token for it proves it (OA-17)."""

    name = "callback"
    auto = False
    title = _l("Confirm the tenant")

    def get(self, pipeline: SetupPipeline) -> ResponseReturnValue:
        return pipeline.render_step()

    def post(self, pipeline: SetupPipeline, form: Mapping[str, str]) -> StepResult:
        problem = form.get("error")
        if problem:
            if problem in ("access_denied", "consent_required", "permission_denied"):
                return error(
                    _(
                        "The consent was cancelled or refused on Microsoft's page. Sign in as a "
                        "Teams Administrator or Global Administrator and try again."
                    ),
                    None,
                )
            return error(_("Microsoft refused the consent (%(code)s).", code=problem[:64]))
        tenant = str(form.get("tenant") or "").strip().lower()
        if form.get("admin_consent", "").lower() != "true" or not GUID.match(tenant):
            return error(_("The answer from Microsoft named no tenant. Please start again."))
        forget_tokens(tenant)  # the proof is a token issued now, not one cached earlier
        try:
            token = acquire_token(tenant, GRAPH_SCOPE)
        except ProviderError as failure:
            log.warning("teams consent not proven: code=%s", failure.code)
            return error(
                _(
                    "Microsoft did not confirm the consent for this tenant (%(code)s). "
                    "Please start again.",
                    code=failure.code,
                ),
                502 if failure.retryable else 400,
            )
        if token_tenant_id(token) != tenant:
            log.warning("teams consent: token tid does not match the returned tenant")
            return error(_("Microsoft did not confirm the consent for this tenant."))
        pipeline.bind("tenant_id", tenant)
        pipeline.bind("consented_at", utcnow().isoformat())
        return advance()


@providers.register
class TeamsProvider(ChatProvider):
    """Microsoft Teams tenants: admin consent, then each member adds the bot."""

    key = "teams"
    name = "Microsoft Teams"
    rate_per_second = TENANT_RATE
    connection_label = _l("Tenant")
    #: Graph /users carries mail (or the userPrincipalName when there is no mailbox).
    links_by_email = True

    def client(self, integration: Integration) -> TeamsClient:
        return TeamsClient(integration)

    def pacing(self, integration: Integration) -> PacingBudget:
        """One bucket per tenant under the 30 requests/s per-app limit."""
        return PacingBudget(f"teams:{integration.external_id}", TENANT_RATE, TENANT_BURST)

    def setup_steps(self) -> list[Step]:
        return [AdminConsentStep(), AdminConsentCallbackStep()]

    def unreachable_reason(self, extra: Mapping[str, Any]) -> str | None:
        """Teams lets a bot write to a member only once that member has added it (we learn
        their Teams user id from the install activity); until then a link waits."""
        return None if extra.get("teams_user_id") else "bot_not_installed"

    def refreshes_tokens(self, integration: Integration) -> bool:
        """Graph and Bot Framework tokens come from client credentials, asked for again."""
        return True

    def client_secret_expires_at(self, integration: Integration) -> datetime | None:
        """Every tenant depends on our Entra app's client secret (MS_CLIENT_SECRET), which
        Entra lets live 24 months at most: MS_CLIENT_SECRET_EXPIRES_AT says when it ends."""
        raw = current_app.config.get("MS_CLIENT_SECRET_EXPIRES_AT")
        try:
            when = datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            log.warning("MS_CLIENT_SECRET_EXPIRES_AT is not an ISO 8601 date: ignored")
            return None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # a bare date or time is read as UTC
        return when

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
        tenant = str(data.get("tenant_id") or "")
        if not GUID.match(tenant):
            raise SetupError(_("The answer from Microsoft named no tenant. Please start again."))
        name = None
        probe = Integration(provider=self.key, external_id=tenant)
        try:
            name = TeamsClient(probe).organization_name()
        except ProviderError as problem:
            log.info("teams organization name unavailable: code=%s", problem.code)
        return ConnectionData(
            external_id=tenant,
            display_name=name or tenant,
            config={
                "tenant_id": tenant,
                "tenant_name": name,
                "consented_at": data.get("consented_at"),
                "bot_name": current_app.config.get("TEAMS_BOT_NAME"),
            },
            secrets={},  # client credentials: nothing per tenant to keep
        )

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:
        from ..directory import start_sync

        start_sync(integration, actor_id)


# --- bot activities ------------------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object, limit: int = 256) -> str:
    return value[:limit] if isinstance(value, str) else ""


def activity_tenant(activity: Mapping[str, Any]) -> str:
    """The tenant of an activity: channelData.tenant.id, else conversation.tenantId."""
    channel_data = activity.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
    value = tenant.get("id") if isinstance(tenant, Mapping) else None
    if not value:
        conversation = activity.get("conversation")
        value = conversation.get("tenantId") if isinstance(conversation, Mapping) else None
    return _text(value, 64).lower()


def _is_personal(activity: Mapping[str, Any]) -> bool:
    conversation = activity.get("conversation")
    kind = conversation.get("conversationType") if isinstance(conversation, Mapping) else None
    return kind in (None, "personal")


def _bot_in(activity: Mapping[str, Any], key: str) -> bool:
    recipient = activity.get("recipient")
    bot = recipient.get("id") if isinstance(recipient, Mapping) else None
    members = activity.get(key)
    return (
        bool(bot)
        and isinstance(members, list)
        and any(isinstance(m, Mapping) and m.get("id") == bot for m in members)
    )


def activity_kind(activity: Mapping[str, Any]) -> str:
    """ "install", "uninstall" or "other" (personal scope only)."""
    kind, action = activity.get("type"), activity.get("action")
    if not _is_personal(activity):
        return "other"
    if (kind == "installationUpdate" and action in ("add", "add-upgrade")) or (
        kind == "conversationUpdate" and _bot_in(activity, "membersAdded")
    ):
        return "install"
    if (kind == "installationUpdate" and action == "remove") or (
        kind == "conversationUpdate" and _bot_in(activity, "membersRemoved")
    ):
        return "uninstall"
    return "other"


def connected_integration(tenant: str) -> Integration | None:
    """The connected Teams integration of a tenant, if any organization has one."""
    if not tenant:
        return None
    return db.session.scalar(
        select(Integration).where(
            Integration.provider == "teams",
            Integration.external_id == tenant,
            Integration.state == IntegrationState.CONNECTED,
        )
    )


def handle_install(integration: Integration, activity: Mapping[str, Any]) -> bool:
    """Store the conversation reference, link when allowed, greet once; commits.

    Returns whether a greeting was sent (the second activity of one install does not greet).
    """
    sender = _mapping(activity.get("from"))
    conversation = activity.get("conversation")
    conversation_id = _text(conversation.get("id") if isinstance(conversation, Mapping) else None)
    object_id = _text(sender.get("aadObjectId"), 64).lower()
    user_id = _text(sender.get("id"))
    service_url = _text(activity.get("serviceUrl"), 2048)
    if not (conversation_id and object_id and user_id and allowed_service_url(service_url)):
        return False
    client = TeamsClient(integration)
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id, ChatAccount.external_id == object_id
        )
    )
    if account is None:
        # Not in the directory yet (joined since the last sync): ask Teams who this is.
        profile: dict[str, Any] = {}
        try:
            profile = client.member(service_url, conversation_id, user_id)
        except ProviderError as problem:
            log.info("teams member lookup failed: code=%s", problem.code)
        email = _text(profile.get("email") or profile.get("userPrincipalName"), 254).lower()
        account = ChatAccount(
            organization_id=integration.organization_id,
            integration_id=integration.id,
            external_id=object_id,
            name=_text(profile.get("name") or sender.get("name") or object_id, 200),
            email=email if email and "#ext#" not in email else None,
            extra={},
        )
        db.session.add(account)
    extra = dict(account.extra or {})
    greeted_before = extra.get("conversation_id") == conversation_id
    recipient = activity.get("recipient")
    extra.update(
        teams_user_id=user_id,
        conversation_id=conversation_id,
        service_url=service_url,
        bot_id=_text(recipient.get("id") if isinstance(recipient, Mapping) else None),
        tenant_id=integration.external_id,
        installed_at=extra.get("installed_at") if greeted_before else utcnow().isoformat(),
    )
    extra.pop("removed_at", None)
    account.extra = extra
    db.session.flush()
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id,
            AccountLink.chat_account_id == account.id,
        )
    )
    if link is not None and link.flagged_reason:
        link.flagged_reason = None  # reachable again
    db.session.commit()
    if link is None:
        _link_installer(integration, account)
    if greeted_before:
        return False
    name = _text(sender.get("name"), 100) or account.name
    locale = "ja" if _text(activity.get("locale"), 16).lower().startswith("ja") else "en"
    greeting = GREETINGS[locale].format(name=name)
    try:
        client.connector(
            service_url,
            f"v3/conversations/{quote(conversation_id, safe=':@')}/activities",
            {"type": "message", "text": greeting},
        )
    except ProviderError as problem:
        log.warning("teams greeting not sent: code=%s", problem.code)
        return False
    return True


def _link_installer(integration: Integration, account: ChatAccount) -> None:
    """Auto-link is on: link the installer's account to the one member with its e-mail."""
    from ...accounts.models import User
    from ..linking import LinkConflict, auto_link_enabled, find_link, link_account

    if not account.email or not auto_link_enabled(integration):
        return
    members = db.session.scalars(
        select(User).where(
            User.organization_id == integration.organization_id,
            User.is_active_flag.is_(True),
            func.lower(User.email) == account.email,
        )
    ).all()
    if len(members) != 1 or find_link(integration, members[0].id) is not None:
        return
    try:
        link_account(integration, members[0], account, actor=None, method=LinkMethod.BOT_INSTALL)
    except LinkConflict:
        db.session.rollback()


def handle_uninstall(integration: Integration, activity: Mapping[str, Any]) -> bool:
    """Forget the conversation and flag the member's link; commits. False if unknown."""
    from ..health import flag_link

    sender = _mapping(activity.get("from"))
    object_id = _text(sender.get("aadObjectId"), 64).lower()
    account = (
        db.session.scalar(
            select(ChatAccount).where(
                ChatAccount.integration_id == integration.id, ChatAccount.external_id == object_id
            )
        )
        if object_id
        else None
    )
    if account is None:
        return False
    extra = dict(account.extra or {})
    extra.pop("conversation_id", None)
    extra["removed_at"] = utcnow().isoformat()
    account.extra = extra
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id,
            AccountLink.chat_account_id == account.id,
        )
    )
    if link is not None and not link.flagged_reason:
        flag_link(link, "bot_removed")
    db.session.commit()
    return True


def installed_accounts(integration: Integration, limit: int = 100) -> tuple[list[ChatAccount], int]:
    """Accounts that added the bot (a live conversation reference): a page and the total."""
    installed = ChatAccount.extra["conversation_id"].as_string().is_not(None)
    where = (ChatAccount.integration_id == integration.id, installed)
    total = db.session.scalar(select(func.count()).select_from(ChatAccount).where(*where)) or 0
    rows = db.session.scalars(
        select(ChatAccount).where(*where).order_by(ChatAccount.name, ChatAccount.id).limit(limit)
    ).all()
    return list(rows), total


def install_link() -> str:
    """Teams deep link to the app (TEAMS_APP_ID, the manifest id; else the bot's app id)."""
    config = current_app.config
    app_id = config.get("TEAMS_APP_ID") or config.get("MS_APP_ID") or ""
    return f"https://teams.microsoft.com/l/app/{quote(str(app_id))}"
