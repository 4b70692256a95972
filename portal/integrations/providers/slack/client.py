"""Slack's installed side: the Web API with a workspace's bot token, Block Kit, the directory.

Every failure is translated into the ``ProviderError`` tree (:func:`call_slack`); only the
error code is kept, never a token or a response body. A rotating token is refreshed before it
expires, with a compare-and-swap so two workers never spend the same refresh token.
"""

from __future__ import annotations

import functools
import logging
import ssl
import urllib.error
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.web import SlackResponse

from ....database import utcnow
from ...models import ChatAccount
from ...time_zones import iana_or_none
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
from ..token_refresh import RefreshingClient

log = logging.getLogger("portal.integrations.slack")

#: users.list page size: Slack's maximum; 10,000 people are 10 calls (Tier 2: 20 per minute).
PAGE_SIZE = 1000
#: Refresh a rotating token this long before it expires (slack_sdk's TokenRotator default).
REFRESH_MARGIN = timedelta(minutes=120)

AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope",
     "no_permission", "invalid_refresh_token"}
)  # fmt: skip
RECIPIENT_ERRORS = frozenset(
    {"user_not_found", "users_not_found", "user_disabled", "channel_not_found", "cannot_dm_bot",
     "is_archived", "user_not_visible", "messages_tab_disabled"}
)  # fmt: skip
TEMPORARY_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout",
     "team_added_to_org", "ratelimited"}
)  # fmt: skip
BUTTON_LABELS = {"ja": "詳細を開く", "en": "Open"}


@functools.lru_cache(maxsize=8)
def _ssl_context_for(bundle: str | None) -> ssl.SSLContext:
    """One TLS context per CA bundle, for the process's lifetime: building one reads and parses
    the whole CA store (the system's without a bundle, which urllib would otherwise do for
    every connection), a cost each Slack call paid again. A context is safe to share between
    threads; a bundle replaced under the same path is read at the next start."""
    return ssl.create_default_context(cafile=bundle)


def _ssl_context() -> ssl.SSLContext:
    return _ssl_context_for(current_app.config.get("PROVIDER_CA_BUNDLE") or None)


def web_client(token: str | None = None, *, wait_on_rate_limit: bool = False) -> WebClient:
    """A slack_sdk client on the configured API URL and CA.

    Sends never wait: the worker reschedules on 429 instead (``wait_on_rate_limit=False``,
    no retry handlers at all). A background directory sync may wait ``Retry-After``.
    """
    handlers: list[RetryHandler] = (
        [RateLimitErrorRetryHandler(max_retry_count=5)] if wait_on_rate_limit else []
    )
    return WebClient(
        token=token,
        base_url=str(current_app.config["SLACK_API_URL"]),
        ssl=_ssl_context(),
        timeout=15,
        retry_handlers=handlers,
    )


def call_slack(function: Callable[[], SlackResponse]) -> SlackResponse:
    """Run one Web API call, translating every failure into the ProviderError tree.

    Only the error code is kept: never a token, never a response body.
    """
    try:
        return function()
    except SlackApiError as problem:
        status = problem.response.status_code
        code = str((problem.response.data or {}).get("error") or f"http_{status}")
        if status == 429:
            retry_after = problem.response.headers.get(
                "Retry-After"
            ) or problem.response.headers.get("retry-after")
            raise ProviderRateLimited(
                "Slack rate limit", retry_after=_seconds(retry_after), code="ratelimited"
            ) from None
        if status >= 500 or code in TEMPORARY_ERRORS:
            raise TemporaryProviderError("Slack is unavailable", code=code) from None
        if code in AUTH_ERRORS:
            raise ProviderAuthError("Slack refused the token", code=code) from None
        if code in RECIPIENT_ERRORS:
            raise RecipientNotFound("Slack cannot reach this member", code=code) from None
        raise ProviderError("Slack refused the call", code=code) from None
    except (SlackClientError, urllib.error.URLError, OSError, ValueError) as problem:
        # Connection refused/reset, TLS failure, timeout, a non-JSON 5xx page.
        raise TemporaryProviderError(
            "Slack could not be reached", code=type(problem).__name__
        ) from None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def render_message(message: Message) -> dict[str, Any]:
    """Block Kit for a notification: title, body, a link button, the DM's choices (buttons
    whose ``value`` the portal signed) and what was done; ``text`` is the fallback."""

    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(message.body)[:3000] or " "}},
    ]
    fallback = f"{message.title}\n{message.body}"
    buttons: list[dict[str, Any]] = []
    if message.url:
        label = BUTTON_LABELS.get(message.locale, BUTTON_LABELS["en"])
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "url": message.url[:3000],
                "action_id": "open",
            }
        )
        fallback += f"\n{message.url}"
    for action in message.actions:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": action.label[:75]},
            "action_id": action.key,
            "value": action.value[:2000],
        }
        if action.style in ("primary", "danger"):
            button["style"] = action.style
        buttons.append(button)
    if buttons:
        blocks.append({"type": "actions", "block_id": "dm_actions", "elements": buttons})
    if message.notes:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": escape(note)[:3000]} for note in message.notes[:10]
                ],
            }
        )
        fallback += "\n" + "\n".join(message.notes)
    return {"text": fallback[:40000], "blocks": blocks}


def update_message(response_url: str, message: Message) -> None:
    """Replace the pressed DM through Slack's ``response_url``; only ever to Slack's hooks
    host (``SLACK_RESPONSE_URL``: the payload names the URL, we never send elsewhere)."""
    allowed = str(current_app.config["SLACK_RESPONSE_URL"])
    if not response_url.startswith(allowed) or ".." in response_url:
        raise ProviderError("response_url outside Slack's hooks", code="response_url_not_allowed")
    try:
        answer = requests.post(
            response_url,
            json={"replace_original": True, **render_message(message)},
            timeout=5,
            verify=current_app.config.get("PROVIDER_CA_BUNDLE") or True,
            allow_redirects=False,
        )
    except requests.RequestException as problem:
        raise TemporaryProviderError(
            "Slack could not be reached", code=type(problem).__name__
        ) from None
    if answer.status_code >= 500:
        raise TemporaryProviderError("Slack is unavailable", code=f"http_{answer.status_code}")
    if answer.status_code >= 400:
        raise ProviderError("Slack refused the update", code=f"http_{answer.status_code}")


class SlackClient(RefreshingClient):
    """The installed side: one workspace's bot token (rotated when token rotation is on)."""

    refresh_margin = REFRESH_MARGIN

    def _exchange(self, values: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        config = current_app.config
        answer = call_slack(
            lambda: web_client().oauth_v2_access(
                client_id=str(config["SLACK_CLIENT_ID"]),
                client_secret=str(config["SLACK_CLIENT_SECRET"]),
                grant_type="refresh_token",
                refresh_token=str(values["refresh_token"]),
            )
        )
        return token_secrets(answer.data), token_expiry(answer.data)  # type: ignore[arg-type]

    def _with_token(self, function: Callable[[WebClient], SlackResponse]) -> SlackResponse:
        """Call with the current token; on ``token_expired`` rotate once and retry."""
        try:
            return call_slack(lambda: function(web_client(self._token())))
        except ProviderAuthError:
            raise
        except ProviderError as problem:
            if problem.code != "token_expired" or not self._secrets().get("refresh_token"):
                raise
        token = str(self.refresh()["access_token"])
        return call_slack(lambda: function(web_client(token)))

    # --- ChatClient ------------------------------------------------------------------------

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        """chat.postMessage with Block Kit to the member's DM with the app.

        The first DM goes to the member's user id: Slack opens the app's DM itself, so no
        ``conversations.open`` (50 a minute per workspace) is spent; the ``D…`` id it answers
        with is returned as ``account_extra``, kept with the outcome and used from then on
        (next-capabilities.md §3).
        """
        payload = render_message(message)
        cached = (account.extra or {}).get("dm_channel")
        try:
            answer = self._post(cached or account.external_id, payload)
        except RecipientNotFound as problem:
            if not cached or problem.code != "channel_not_found":
                raise
            # A stale cached DM id: post to the user once more; a second failure is real.
            answer = self._post(account.external_id, payload)
        channel = str(answer.get("channel") or "")
        return DeliveryResult(
            provider_message_id=str(answer.get("ts") or "") or None,
            account_extra={"dm_channel": channel} if channel and channel != cached else None,
        )

    def _post(self, channel: str, payload: dict[str, Any]) -> SlackResponse:
        return self._with_token(
            lambda web: web.chat_postMessage(
                channel=channel, text=payload["text"], blocks=payload["blocks"]
            )
        )

    def iter_directory(self) -> Iterator[list[DirectoryEntry]]:
        """users.list with the cursor, 1,000 per page; bots, leavers and invitees skipped."""
        cursor: str | None = None
        while True:
            answer = self._with_token(
                lambda web: _users_page(web, cursor)  # noqa: B023 - called at once
            )
            yield [
                entry for member in answer.get("members") or [] if (entry := member_entry(member))
            ]
            cursor = ((answer.get("response_metadata") or {}).get("next_cursor") or "").strip()
            if not cursor:
                return

    def revoke(self) -> None:
        """auth.revoke: the bot token dies at Slack (which then sends ``tokens_revoked``)."""
        self._with_token(lambda web: web.auth_revoke())

    def lookup_by_email(self, email: str) -> DirectoryEntry | None:
        """users.lookupByEmail: one Tier-3 call per person (the benchmark's naive approach)."""
        try:
            answer = self._with_token(lambda web: web.users_lookupByEmail(email=email))
        except RecipientNotFound:
            return None
        return member_entry(answer.get("user") or {})


def _users_page(web: WebClient, cursor: str | None) -> SlackResponse:
    # A background job may wait out Retry-After (20 calls per minute), a send never does.
    waiting = web_client(web.token, wait_on_rate_limit=True)
    return waiting.users_list(limit=PAGE_SIZE, cursor=cursor or None)


def member_entry(member: Mapping[str, Any]) -> DirectoryEntry | None:
    """A users.list member (or a ``team_join``/``user_change`` user) as a directory entry, or
    None for bots, leavers and invitees; ``tz`` only when it is a valid IANA zone."""
    if (
        not member.get("id")
        or member.get("deleted")
        or member.get("is_bot")
        or member.get("is_app_user")
        or member.get("is_invited_user")
        or member.get("id") == "USLACKBOT"
    ):
        return None
    profile = member.get("profile") or {}
    email = str(profile.get("email") or "").strip().lower() or None
    name = (
        profile.get("real_name") or member.get("real_name") or profile.get("display_name")
        or member.get("name") or member["id"]
    )  # fmt: skip
    return DirectoryEntry(
        external_id=str(member["id"]),
        name=str(name)[:200],
        email=email,
        extra={
            "display_name": str(profile.get("display_name") or "")[:100],
            "guest": bool(member.get("is_restricted") or member.get("is_ultra_restricted")),
            # None (no zone, or one we cannot load) removes a zone stored earlier.
            "tz": iana_or_none(member.get("tz")),
        },
    )


def token_secrets(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"access_token": data.get("access_token")}
    if data.get("refresh_token"):
        values["refresh_token"] = data["refresh_token"]
    return values


def token_expiry(data: Mapping[str, Any]) -> Any:
    seconds = data.get("expires_in")
    return utcnow() + timedelta(seconds=int(seconds)) if seconds else None
