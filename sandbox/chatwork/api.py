"""api.chatwork.com/v2: GET /me, GET /contacts, GET /incoming_requests,
POST /rooms/{room_id}/messages.

Bearer tokens only (personal `x-chatworktoken` tokens are not modelled). Every answer carries the
`x-ratelimit-*` headers of the per-token 300 requests / 5 minutes window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from sandbox.chatwork.models import ChatworkAccount, ChatworkMessage
from sandbox.ratelimit import Decision
from sandbox.state import IssuedToken, current_state
from sandbox.traffic import bearer_token

bp = Blueprint("chatwork_api", __name__, url_prefix="/chatwork/api/v2")

MAX_BODY = 65535
MESSAGE_ID_BASE = 1_600_000_000_000_000_000


def _errors(status: int, *messages: str) -> tuple[Response, int]:
    return jsonify(errors=list(messages)), status


def _unauthorized(description: str) -> tuple[Response, int]:
    response, status = _errors(401, "Invalid API token")
    response.headers["WWW-Authenticate"] = (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    return response, status


View = Callable[..., Any]


def authorized(*scopes: str) -> Callable[[View], View]:
    """Check the bearer token, one of `scopes` and the rate limit before the view runs."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            state = current_state()
            value = bearer_token()
            if value is None:
                return _unauthorized("The access token is missing")
            with state.lock:
                token = state.find_token(value)
                if token is None or token.provider != "chatwork" or token.kind != "access":
                    return _unauthorized("The access token is invalid")
                if token.status() == "expired":
                    return _unauthorized("The access token expired")
                if token.status() == "revoked":
                    return _unauthorized("The access token is revoked")
                account = state.chatwork.accounts[int(token.owner)]
                decision = state.limiter.hit(
                    f"chatwork:api|{token.id}", state.settings.rate_rules("chatwork:api")
                )
                g.rate_decision = decision
                if not decision.allowed:
                    return _errors(429, "Rate limit exceeded")
                if not set(scopes) & set(token.scopes):
                    return _errors(403, "Insufficient scope")
                return view(account=account, token=token, **kwargs)

        return wrapper

    return decorate


@bp.after_request
def _rate_headers(response: Response) -> Response:
    decision: Decision | None = g.get("rate_decision")
    if decision is not None and decision.limit:
        response.headers["x-ratelimit-limit"] = str(decision.limit)
        response.headers["x-ratelimit-remaining"] = str(decision.remaining)
        response.headers["x-ratelimit-reset"] = str(int(decision.reset_at))
    return response


@bp.get("/me")
@authorized("users.profile.me:read", "users.all:read")
def me(account: ChatworkAccount, token: IssuedToken) -> Response:
    """The authorizing account's profile (with `mail`)."""
    return jsonify(account.me())


@bp.get("/contacts")
@authorized("contacts.all:read", "contacts.all:read_write")
def contacts(account: ChatworkAccount, token: IssuedToken) -> Response | tuple[str, int]:
    """Accepted contacts with their direct-chat room; 204 when there are none."""
    listed = current_state().chatwork.contacts_of(account.account_id)
    if not listed:
        return "", 204
    return jsonify([other.contact(room_id) for other, room_id in listed])


@bp.get("/incoming_requests")
@authorized("contacts.all:read", "contacts.all:read_write")
def incoming_requests(account: ChatworkAccount, token: IssuedToken) -> Response | tuple[str, int]:
    """Contact requests others sent to this account (at most 100)."""
    data = current_state().chatwork
    pending = [r for r in data.requests.values() if r.to_id == account.account_id][:100]
    if not pending:
        return "", 204
    return jsonify(
        [
            {
                **data.accounts[r.from_id].contact(0),
                "request_id": r.request_id,
                "message": r.message,
            }
            for r in pending
        ]
    )


@bp.put("/incoming_requests/<int:request_id>")
@authorized("contacts.all:write", "contacts.all:read_write")
def accept_incoming_request(
    account: ChatworkAccount, token: IssuedToken, request_id: int
) -> Response | tuple[Response, int]:
    """Accept a contact request sent to this account: the sender becomes a contact with a
    direct chat, whose room id the answer carries."""
    data = current_state().chatwork
    pending = data.requests.get(request_id)
    if pending is None or pending.to_id != account.account_id:
        return _errors(404, "Not Found")
    room = data.accept_request(request_id)
    return jsonify(data.accounts[pending.from_id].contact(room.room_id))


@bp.post("/rooms/<int:room_id>/messages")
@authorized("rooms.messages:write", "rooms.all:write", "rooms.all:read_write")
def post_message(
    account: ChatworkAccount, token: IssuedToken, room_id: int
) -> Response | tuple[Response, int]:
    """Post to a room the account is in. Only the form body counts (query ignored since 2025)."""
    state = current_state()
    body = request.form.get("body", "")
    if not body:
        return _errors(400, "Parameter 'body' is required")
    if len(body) > MAX_BODY:
        return _errors(400, "Parameter 'body' is too long")
    room = state.chatwork.rooms.get(room_id)
    if room is None:
        return _errors(404, "Room not found")
    if account.account_id not in room.members:
        return _errors(403, "You don't have permission to send messages in this room")
    others = [state.chatwork.accounts[m] for m in room.members if m != account.account_id]
    if any(not other.active for other in others):
        # The contact's account was deleted: the direct chat is gone [simplified].
        return _errors(403, "You don't have permission to send messages in this room")
    message_id = str(MESSAGE_ID_BASE + state.next_id())
    room.messages.append(
        ChatworkMessage(message_id, room_id, account.account_id, body, int(time.time()))
    )
    return jsonify(message_id=message_id)
