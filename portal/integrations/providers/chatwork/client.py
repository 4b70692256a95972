"""Chatwork's installed side: API v2 as the connected account, its tokens, the contacts.

Everything is posted *as the connecting account* (no bot identity). The directory is that
account's contacts (no e-mail), and a DM goes to the direct-chat ``room_id`` shared with the
contact. Access tokens live minutes: refreshed shortly before expiry and once on a 401; the
newest refresh token is always stored. Every failure maps onto the ``ProviderError`` tree,
never with a token or a response body.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ....database import utcnow
from ...models import ChatAccount
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

TIMEOUT = 15


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
    for note in message.notes:
        body = f"{body}\n{clean(note)}"
    if message.actions_url:
        # No buttons in Chatwork: the choices are on a portal page behind a single-use link.
        with force_locale(message.locale):
            answer = _("Answer here: %(url)s", url=message.actions_url)
        body = f"{body}\n[hr]{answer}"
    return f"[info][title]{clean(message.title)[:200]}[/title]{body}[/info]"


# --- the installed side ----------------------------------------------------------------------


class ChatworkClient(RefreshingClient):
    """One organization's connection: its own client credentials and the account's tokens
    (access tokens live 15–30 minutes)."""

    def _exchange(self, values: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        client_id = str((self.integration.config or {}).get("client_id") or "")
        if not values.get("refresh_token") or not values.get("client_secret") or not client_id:
            raise ProviderAuthError("cannot refresh", code="no_refresh_token")
        answer = token_request(
            client_id,
            str(values["client_secret"]),
            {"grant_type": "refresh_token", "refresh_token": str(values["refresh_token"])},
        )
        # Rotation is not documented either way: keep whatever arrives (OA-23).
        fresh = {
            "access_token": answer["access_token"],
            "refresh_token": answer.get("refresh_token") or values["refresh_token"],
        }
        return fresh, parse_expiry(answer)

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

    def incoming_requests(self) -> list[dict[str, Any]]:
        """GET /incoming_requests: contact requests others sent to the connected account (at
        most 100, oldest first); 204 means none."""
        response = self._call("GET", "/incoming_requests")
        rows = [] if response.status_code == 204 else response.json()
        return [row for row in rows or [] if isinstance(row, dict)]

    def accept_request(self, request_id: int) -> DirectoryEntry | None:
        """PUT /incoming_requests/{id}: accept it; the new contact with its direct chat."""
        response = self._call("PUT", f"/incoming_requests/{int(request_id)}")
        body = response.json() if response.status_code == 200 else None
        return contact_entry(body) if isinstance(body, dict) else None

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
