"""Chatwork: each company's own OAuth client, consent as the notification account, contacts, DMs.

Setup (the vendor's "ChatWorkの連携方法"): the admin registers an OAuth client on Chatwork
(Confidential, redirect URI ``PUBLIC_BASE_URL + /chatwork/oauth/callback``, the four
:data:`SCOPES`), enters its client ID and secret here ("この内容で保存する"), and allows access
on Chatwork's consent page. Unlike Slack there is no service-wide app: the client credentials
are the organization's own, sealed in the wizard's state until the consent succeeds and then
sealed to the integration (``secrets["client_secret"]``, never rendered).

Everything is posted *as the connecting account* (no bot identity), so the page shows which
account is connected (``GET /me``). The directory is that account's contacts (no e-mail), and a
DM goes to the direct-chat ``room_id`` shared with the contact. Access tokens live minutes:
refreshed shortly before expiry and once on a 401; the newest refresh token is always stored.

Settings: CHATWORK_AUTHORIZE_URL, CHATWORK_TOKEN_URL, CHATWORK_API_URL, CHATWORK_WWW_URL (and
PROVIDER_CA_BUNDLE for the sandbox only). Optional: CHATWORK_RATE_LIMIT (300) and
CHATWORK_RATE_WINDOW (300 s) — the per-token limit the pacing stays under.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...database import utcnow
from ...extensions import db
from .. import name_matching
from ..models import ChatAccount, Integration
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
    stored_secrets,
)
from .oauth import OAuthAuthorizeStep, OAuthCallbackStep, OAuthSpec

log = logging.getLogger("portal.integrations.chatwork")

#: What the portal needs, no more (providers.md §2.1): a permanent refresh token, who is
#: connected, posting to direct chats, and the contacts.
SCOPES = ("offline_access", "users.profile.me:read", "rooms.messages:write", "contacts.all:read")
#: The client name suggested for Chatwork's registration screen.
CLIENT_NAME = "Chat Connect"
#: Refresh this long before the access token expires (tokens live 15–30 minutes).
REFRESH_MARGIN = timedelta(seconds=120)
#: The pacing bucket's burst; the rate is set so burst + rate x window stays under the limit,
#: with a few requests left for the contacts sync and GET /me.
BURST = 10
RESERVE = 5
#: Client IDs on Chatwork are URL-safe tokens; anything else is a typo or a pasted secret.
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._~\-]{8,128}")
TIMEOUT = 15
#: Chatwork markup tags a member's text must not open or close inside our [info] box.
TAGS = re.compile(r"\[(/?)(info|title|code|hr|To|rp|piconname|picon|qt|qtmeta)", re.IGNORECASE)
#: Words that make a connected account look like a dedicated notification account.
DEDICATED_HINTS = ("通知", "お知らせ", "notify", "notification", "bot", "ボット", "system",
                   "システム", "wistant", "chat connect", "noreply", "no-reply")  # fmt: skip

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


# --- HTTP ------------------------------------------------------------------------------------


def _verify() -> str | bool:
    """Per request: REQUESTS_CA_BUNDLE would override a Session attribute."""
    return current_app.config.get("PROVIDER_CA_BUNDLE") or True


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_expiry(data: Mapping[str, Any], now: datetime | None = None) -> datetime | None:
    """When the access token in a token response expires, read defensively (providers.md §2.1).

    ``expires_in`` may be a number or a string ("1800"); Chatwork's own sample even shows an
    epoch-milliseconds string. The JWT's ``exp`` claim is used too; the earliest wins.
    """
    now = now or utcnow()
    candidates: list[datetime] = []
    seconds = _seconds(data.get("expires_in"))
    if seconds is not None and seconds > 0:
        if seconds > 1e11:  # epoch milliseconds
            candidates.append(datetime.fromtimestamp(seconds / 1000, tz=now.tzinfo))
        elif seconds > 1e9:  # epoch seconds
            candidates.append(datetime.fromtimestamp(seconds, tz=now.tzinfo))
        else:
            candidates.append(now + timedelta(seconds=seconds))
    exp = _jwt_exp(str(data.get("access_token") or ""))
    if exp is not None:
        candidates.append(datetime.fromtimestamp(exp, tz=now.tzinfo))
    return min(candidates) if candidates else None


def _jwt_exp(token: str) -> float | None:
    """The unverified ``exp`` of a JWT access token (only to schedule the refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return _seconds(payload.get("exp")) if isinstance(payload, dict) else None


def _oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return str((body or {}).get("error") or f"http_{response.status_code}")[:64]


def token_request(client_id: str, client_secret: str, form: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint with HTTP Basic client auth; ProviderError on refusal."""
    try:
        response = requests.post(
            str(current_app.config["CHATWORK_TOKEN_URL"]),
            data=form,
            auth=(client_id, client_secret),
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
            verify=_verify(),
        )
    except requests.RequestException as problem:
        raise TemporaryProviderError(
            "Chatwork could not be reached", code=type(problem).__name__
        ) from None
    if response.status_code >= 500:
        raise TemporaryProviderError("Chatwork is unavailable", code=f"http_{response.status_code}")
    if response.status_code != 200:
        code = _oauth_error(response)
        if code in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise ProviderAuthError("Chatwork refused the credentials", code=code)
        raise ProviderError("Chatwork refused the token request", code=code)
    try:
        data = response.json()
    except ValueError:
        raise TemporaryProviderError("Chatwork sent no JSON", code="invalid_json") from None
    if not isinstance(data, dict) or not data.get("access_token"):
        raise ProviderError("Chatwork sent no token", code="no_token")
    return data


def api_call(
    method: str, path: str, token: str, form: dict[str, str] | None = None
) -> requests.Response:
    """One API v2 call, translating failures into the ProviderError tree (never a token)."""
    url = f"{str(current_app.config['CHATWORK_API_URL']).rstrip('/')}{path}"
    try:
        response = requests.request(
            method,
            url,
            data=form,  # form-encoded: query parameters on POST are ignored since 2025-07
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=TIMEOUT,
            verify=_verify(),
        )
    except requests.RequestException as problem:
        raise TemporaryProviderError(
            "Chatwork could not be reached", code=type(problem).__name__
        ) from None
    status = response.status_code
    if status in (200, 204):
        return response
    if status == 429:
        reset = _seconds(response.headers.get("x-ratelimit-reset"))
        wait = max(0.5, reset - time.time()) if reset else None
        raise ProviderRateLimited("Chatwork rate limit", retry_after=wait, code="ratelimited")
    if status == 401:
        raise ProviderAuthError("Chatwork refused the token", code="invalid_token")
    if status >= 500:
        raise TemporaryProviderError("Chatwork is unavailable", code=f"http_{status}")
    if status in (403, 404):
        raise ProviderError("Chatwork refused the call", code=f"http_{status}")
    raise ProviderError("Chatwork refused the call", code=f"http_{status}")


def render_message(message: Message) -> str:
    """Chatwork message markup: an [info] box with the title, the body and the link."""

    def clean(text: str) -> str:
        # Keep members' text from closing our tags or mentioning people.
        return re.sub(
            r"\[(/?)(info|title|code|hr|To|rp|piconname|picon|qt|qtmeta)", r"［\1\2", text
        )

    body = clean(message.body)[:60000]
    if message.url:
        body = f"{body}\n{message.url[:2000]}"
    return f"[info][title]{clean(message.title)[:200]}[/title]{body}[/info]"


# --- the installed side ----------------------------------------------------------------------


class ChatworkClient:
    """One organization's connection: its own client credentials and the account's tokens."""

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def _secrets(self) -> dict[str, Any]:
        return stored_secrets(self.integration)

    def _token(self) -> str:
        values = self._secrets()
        expires = self.integration.token_expires_at
        if expires is not None and expires - utcnow() < REFRESH_MARGIN:
            values = self.refresh()
        return str(values["access_token"])

    def refresh(self) -> dict[str, Any]:
        """Swap the refresh token for a new pair and store it before anyone uses it.

        Compare-and-swap on ``token_version``: when another worker refreshed meanwhile, its
        pair is used instead of spending the refresh token again. A refused refresh is a dead
        connection (ProviderAuthError: the worker marks it needs-reconnect).
        """
        seen = self.integration.token_version
        db.session.refresh(self.integration, with_for_update=True)
        if self.integration.token_version != seen:
            values = self._secrets()
            db.session.commit()
            return values
        values = self._secrets()
        client_id = str((self.integration.config or {}).get("client_id") or "")
        if not values.get("refresh_token") or not values.get("client_secret") or not client_id:
            db.session.rollback()
            raise ProviderAuthError("cannot refresh", code="no_refresh_token")
        try:
            answer = token_request(
                client_id,
                str(values["client_secret"]),
                {"grant_type": "refresh_token", "refresh_token": str(values["refresh_token"])},
            )
        except ProviderError:
            db.session.rollback()
            raise
        values = {
            **values,
            "access_token": answer["access_token"],
            # Rotation is not documented either way: keep whatever arrives (OA-23).
            "refresh_token": answer.get("refresh_token") or values["refresh_token"],
        }
        self.integration.set_secrets(values)
        self.integration.token_expires_at = parse_expiry(answer)
        self.integration.token_version = seen + 1
        db.session.commit()
        return values

    def _call(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        """Call with the current token; on a 401 refresh once and retry, then give up."""
        try:
            return api_call(method, path, self._token(), form)
        except ProviderAuthError as problem:
            if problem.code != "invalid_token":
                raise
        token = str(self.refresh()["access_token"])
        return api_call(method, path, token, form)

    # --- ChatClient ------------------------------------------------------------------------

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        """POST /rooms/{room_id}/messages to the direct chat shared with the contact."""
        room_id = str((account.extra or {}).get("room_id") or "")
        if not room_id.isdigit():
            raise RecipientNotFound("no direct chat with this contact", code="no_room")
        try:
            response = self._call(
                "POST", f"/rooms/{room_id}/messages", {"body": render_message(message)}
            )
        except ProviderError as problem:
            if problem.code in ("http_403", "http_404"):
                # The contact was removed or the direct chat left: flag the link.
                raise RecipientNotFound("the direct chat is gone", code="room_gone") from None
            raise
        try:
            message_id = str(response.json().get("message_id") or "") or None
        except ValueError:
            message_id = None
        return DeliveryResult(provider_message_id=message_id)

    def iter_directory(self) -> Iterator[list[DirectoryEntry]]:
        """GET /contacts: one page (Chatwork does not page it); 204 means no contacts."""
        response = self._call("GET", "/contacts")
        rows = [] if response.status_code == 204 else response.json()
        yield [entry for row in rows or [] if (entry := contact_entry(row))]

    def me(self) -> dict[str, Any]:
        """GET /me: the connected account."""
        return dict(self._call("GET", "/me").json())

    def revoke(self) -> None:
        """Chatwork has no token revocation endpoint: the admin removes the client there."""
        raise ProviderError("Chatwork has no revocation endpoint", code="no_revoke")


def contact_entry(row: Mapping[str, Any]) -> DirectoryEntry | None:
    """A contact as a directory entry (no e-mail: Chatwork never gives one)."""
    if not isinstance(row, Mapping) or not row.get("account_id") or not row.get("room_id"):
        return None
    return DirectoryEntry(
        external_id=str(row["account_id"]),
        name=str(row.get("name") or row["account_id"])[:200],
        email=None,
        extra={
            "room_id": str(row["room_id"]),
            "chatwork_id": str(row.get("chatwork_id") or "")[:100],
            "organization_name": str(row.get("organization_name") or "")[:200],
            "department": str(row.get("department") or "")[:200],
        },
    )


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


# --- the wizard ------------------------------------------------------------------------------


class ClientCredentialsStep:
    """Step 3: "クライアントID" and "クライアントシークレット", then "この内容で保存する".

    The secret is never echoed: a blank field keeps the one the view bound before the step
    (sealed ``client_secret``: typed in this setup attempt, or the connection's for its own ID).
    A typed secret is remembered with ``secret_typed_at`` even when the ID is refused, so the
    admin corrects the ID only, as after Chatwork's error page for a wrong one.
    """

    name = "client"
    title = _l("Enter the client ID and secret")
    auto = False

    def get(self, pipeline: SetupPipeline) -> ResponseReturnValue:
        return pipeline.render_step()

    def post(self, pipeline: SetupPipeline, form: Mapping[str, str]) -> StepResult:
        from ..views.chatwork import render_client_step

        client_id = str(form.get("client_id") or "").strip()
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
            pipeline.bind_sealed("client_secret", secret)
            pipeline.bind("secret_typed_at", utcnow().isoformat())
        elif not pipeline.fetch_sealed("client_secret"):
            errors["client_secret"] = _(
                "Enter the client secret shown on Chatwork's OAuth client screen."
            )
        if errors:
            pipeline.bind("client_id", client_id[:128])
            return render(render_client_step(errors=errors, status=422, pipeline=pipeline))
        pipeline.bind("client_id", client_id)
        pipeline.bind("secret_replaced", bool(secret))
        return advance()


class ChatworkAuthorizeStep(OAuthAuthorizeStep):
    """The consent redirect with the organization's own client ID."""

    def client_id(self, pipeline: SetupPipeline) -> str | None:
        value = pipeline.fetch("client_id")
        return str(value) if value else None


class ChatworkCallbackStep(OAuthCallbackStep):
    """Exchange with the state record's own credentials, read GET /me; failures go back to
    step 3 with the form kept (cancel: a flash; the rest: the form page with the message)."""

    def exchange(
        self, pipeline: SetupPipeline, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        client_id = str(pipeline.fetch("client_id") or "")
        secret = str(pipeline.fetch_sealed("client_secret") or "")
        if not client_id or not secret:
            raise ProviderError("no client credentials in the setup", code="no_client")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        token = token_request(client_id, secret, form)
        response = api_call("GET", "/me", str(token["access_token"]))
        pipeline.bind("me", response.json())
        return token

    def post(self, pipeline: SetupPipeline, form: Mapping[str, str]) -> StepResult:
        from ..views.chatwork import render_client_step

        result = super().post(pipeline, form)
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
        pipeline.record.error = message[:1000]
        return render(render_client_step(message=message, status=status, pipeline=pipeline))


# --- the provider ----------------------------------------------------------------------------


@providers.register
class ChatworkProvider(ChatProvider):
    """Chatwork: the organization's own OAuth client, contacts as the directory, DMs."""

    key = "chatwork"
    name = "Chatwork"
    rate_per_second = 1.0
    setup_preparation = (
        _l("Prepare the Chatwork account"),
        _l("Register an OAuth client on Chatwork"),
    )

    def client(self, integration: Integration) -> ChatworkClient:
        return ChatworkClient(integration)

    def pacing(self, integration: Integration) -> PacingBudget:
        """One bucket per connected account (= per token): ``BURST`` + rate x window stays a
        few requests under Chatwork's 300 requests / 5 minutes."""
        return PacingBudget(f"chatwork:{integration.external_id}", self.send_rate(), BURST)

    def unlinked_reasons(
        self, integration: Integration, user_ids: Sequence[int]
    ) -> Mapping[int, str]:
        """Contacts carry no e-mail, so "no e-mail match" says nothing here: a member's name
        matches one contact (a suggestion), several, or none (not a contact of the account)."""
        reasons = name_matching.suggest(integration, sample=0).reasons
        return {user_id: reasons[user_id] for user_id in user_ids if user_id in reasons}

    def refreshes_tokens(self, integration: Integration) -> bool:
        """The 15-30-minute access token is refreshed on use (offline_access: the refresh token
        does not expire)."""
        return True

    @staticmethod
    def send_rate() -> float:
        """Messages per second the worker may send for one token."""
        config = current_app.config
        limit = float(config.get("CHATWORK_RATE_LIMIT", 300))
        window = float(config.get("CHATWORK_RATE_WINDOW", 300))
        return max(0.01, (limit - BURST - RESERVE) / window)

    def setup_steps(self) -> list[Step]:
        return [
            ClientCredentialsStep(),
            ChatworkAuthorizeStep(CHATWORK_SPEC, title=_l("Allow on Chatwork")),
            ChatworkCallbackStep(CHATWORK_SPEC, self, title=_l("Finish the connection")),
        ]

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        """Never used: the callback step exchanges with the wizard's own credentials."""
        raise ProviderError("no client credentials", code="no_client")

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
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

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:
        """Read the contacts in the background (progress on the page)."""
        from ..directory import start_sync

        start_sync(integration, actor_id)


def _member_emails(data: Mapping[str, Any]) -> set[str]:
    """E-mail addresses of the organization's members (to spot a personal account)."""
    from sqlalchemy import func, select

    from ...accounts.models import User

    organization_id = data.get("organization_id")
    if not organization_id:
        return set()
    return set(
        db.session.scalars(
            select(func.lower(User.email)).where(User.organization_id == organization_id)
        )
    )
