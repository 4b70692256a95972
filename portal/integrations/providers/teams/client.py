"""Microsoft Teams' installed side: Graph with the tenant's token, the Bot Connector with the
bot's, Adaptive Cards, and the mapping of every failure onto the ``ProviderError`` tree.

The customer's tenant is trusted only after a client-credentials Graph token for it was issued
and its ``tid`` is that tenant (reliability.md OA-17, ``setup.py``). No response body is ever
kept, and the bot's token never leaves for a service URL off the allow-list (WH-19).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from flask import current_app

from ....extensions import db
from ...models import ChatAccount, Integration
from ..base import (
    DeliveryResult,
    DirectoryEntry,
    Message,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    RecipientNotFound,
    TemporaryProviderError,
)
from .botframework import allowed_service_url
from .mailbox import TimeZoneReader
from .tokens import (
    BOT_SCOPE,
    GRAPH_SCOPE,
    TIMEOUT,
    acquire_token,
    bot_tenant,
    forget_tokens,
    verify,
)

log = logging.getLogger("portal.integrations.teams")

#: Graph /users page size: the maximum $top (1000 is refused).
PAGE_SIZE = 999
USER_FIELDS = "id,displayName,mail,userPrincipalName,accountEnabled,userType"
#: A background sync waits out Graph's Retry-After this many times, then gives up for now.
GRAPH_WAITS = 5
RETRYABLE_STATUSES = frozenset({412, 500, 502, 503, 504})
BUTTON_LABELS = {"ja": "詳細を開く", "en": "Open"}
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


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


#: Adaptive Card action styles for the DM's choices.
ACTION_STYLES = {"primary": "positive", "danger": "destructive"}

#: One kept-alive connection pool for Bot Connector posts, shared by the worker's threads: a
#: new TLS connection per DM cost about 8 ms of CPU each (bench/dispatch_teams.py). Proxies
#: from the environment are not consulted, as for the Graph installs (``installs.py``).
_connector = requests.Session()
_connector.trust_env = False
_connector.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=32))
_connector.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))


def render_card(message: Message) -> dict[str, Any]:
    """The Adaptive Card of a notification: title, body, what was done, then a link and the
    DM's choices as ``Action.Execute`` (Universal Actions, card 1.4: the press comes back as an
    ``adaptiveCard/action`` invoke carrying ``verb`` and our signed ``data.value``)."""
    fallback = f"{message.title}\n{message.body}" + (f"\n{message.url}" if message.url else "")
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title[:200],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": message.body[:4000] or " ", "wrap": True},
    ]
    body += [
        {"type": "TextBlock", "text": note[:1000], "isSubtle": True, "wrap": True}
        for note in message.notes[:10]
    ]
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "fallbackText": fallback[:4000],
        "body": body,
    }
    actions: list[dict[str, Any]] = []
    if message.url:
        label = BUTTON_LABELS.get(message.locale, BUTTON_LABELS["en"])
        actions.append({"type": "Action.OpenUrl", "title": label, "url": message.url[:2000]})
    for action in message.actions:
        execute: dict[str, Any] = {
            "type": "Action.Execute",
            "title": action.label,
            "verb": action.key,
            "data": {"value": action.value},
        }
        if action.style in ACTION_STYLES:
            execute["style"] = ACTION_STYLES[action.style]
        actions.append(execute)
    if actions:
        card["actions"] = actions
    return card


def render_message(message: Message) -> dict[str, Any]:
    """A message activity with the notification's Adaptive Card and a text summary."""
    return {
        "type": "message",
        "summary": message.title[:200],
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": render_card(message)}],
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
                response = _connector.post(
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=TIMEOUT,
                    verify=verify(),
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
                url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, verify=verify()
            )
        except requests.RequestException:
            raise TemporaryProviderError("Bot Connector unreachable", code="connection") from None
        _raise_for(response, auth_code="bot_unauthorized")
        answer = response.json()
        return answer if isinstance(answer, dict) else {}

    # --- Graph --------------------------------------------------------------------------------

    def graph(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a Graph URL with the tenant's token; a background caller may wait out 429s."""
        return self._graph_call("GET", url, params=params)

    def graph_batch(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /v1.0/$batch``: up to 20 requests in one call, each answered (and throttled)
        on its own; the answers, in Graph's order (which is not the requests')."""
        answer = self._graph_call("POST", f"{self._graph_root()}/$batch", body={"requests": calls})
        responses = answer.get("responses")
        return [r for r in responses if isinstance(r, dict)] if isinstance(responses, list) else []

    def _graph_root(self) -> str:
        return f"{str(current_app.config['MS_GRAPH_URL']).rstrip('/')}/v1.0"

    def _graph_call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Graph call with the tenant's token, waiting out up to GRAPH_WAITS 429s.

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
                response = requests.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=TIMEOUT,
                    verify=verify(),
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
        """Graph /users, 999 a page, following @odata.nextLink; disabled accounts skipped;
        each member's time zone from their mailbox settings where Graph gives it."""
        url = f"{self._graph_root()}/users"
        params: dict[str, str] | None = {"$select": USER_FIELDS, "$top": str(PAGE_SIZE)}
        zones = TimeZoneReader(self)
        while url:
            answer = self.graph(url, params)
            page = [entry for user in answer.get("value") or [] if (entry := _entry(user))]
            zones.fill(page)
            yield page
            url, params = str(answer.get("@odata.nextLink") or ""), None

    def organization_name(self) -> str | None:
        """The tenant's display name (Graph /organization), or None."""
        url = f"{self._graph_root()}/organization"
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
