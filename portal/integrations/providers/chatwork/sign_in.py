"""Chatwork sign-in for members linking their own account, and the contact it needs.

The member authorizes the company's own OAuth client (the one the admin registered, with
the member redirect URI added) for ``users.profile.me:read`` only; ``GET /me`` with that
token gives their ``account_id``, which is all the portal keeps (the member's token is
dropped at once). A DM needs a direct chat, that is a contact of the notification account:

- already a contact: linked at once;
- a contact request from that very account is waiting: the portal accepts it with the
  notification account's token (``PUT /incoming_requests/{id}``: the answer carries the new
  direct chat's ``room_id``) and links;
- neither: :class:`~..base.SignInPending` tells the member to send a contact request to the
  notification account; "I sent it" (``resume``) looks again, for the account they proved,
  never for a name or an id typed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ....extensions import db
from ...models import ChatAccount, Integration
from ..base import (
    DirectoryEntry,
    MemberSignIn,
    ProviderError,
    SignInPending,
    SignInRefused,
    SignInRequest,
    stored_secrets,
)
from .client import ChatworkClient, api_call, token_request

#: Who the member is: nothing else of their account.
SCOPE = "users.profile.me:read"
#: The connection's scope that lets the portal accept contact requests.
ACCEPT_SCOPE = "contacts.all:read_write"


class ChatworkSignIn(MemberSignIn):
    """:class:`~..base.MemberSignIn` for Chatwork."""

    def available(self, integration: Integration) -> bool:
        """Connections made before members could link themselves lack the scope to accept
        contact requests (and their client the member redirect URI): no button there."""
        return ACCEPT_SCOPE in ((integration.config or {}).get("scopes") or [])

    def authorize_url(self, integration: Integration, request: SignInRequest) -> str:
        params = {
            "response_type": "code",
            "client_id": str((integration.config or {}).get("client_id") or ""),
            "redirect_uri": request.redirect_uri,
            "scope": SCOPE,
            "state": request.state,
            "code_challenge": request.code_challenge,
            "code_challenge_method": "S256",
        }
        url = str(current_app.config["CHATWORK_AUTHORIZE_URL"])
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
        client_id = str((integration.config or {}).get("client_id") or "")
        secret = str(stored_secrets(integration).get("client_secret") or "")
        if not client_id or not secret:
            raise ProviderError("no client credentials", code="no_client")
        answer = token_request(
            client_id,
            secret,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        me = api_call("GET", "/me", str(answer.get("access_token") or "")).json()
        if not isinstance(me, dict) or not str(me.get("account_id") or "").isdigit():
            raise ProviderError("no account id", code="no_account")
        account_id = str(me["account_id"])
        if account_id == integration.external_id:
            raise SignInRefused(
                _("You signed in as the account that sends the notifications. Sign in to "
                  "Chatwork with your own account and try again.")
            )  # fmt: skip
        return self._contact(integration, account_id, str(me.get("name") or account_id)[:200])

    def resume(self, integration: Integration, resume: Mapping[str, Any]) -> DirectoryEntry:
        account_id = str(resume.get("account_id") or "")
        if not account_id.isdigit():
            raise SignInRefused(_("The setup expired. Please start again."))
        return self._contact(integration, account_id, str(resume.get("name") or account_id))

    def _contact(self, integration: Integration, account_id: str, name: str) -> DirectoryEntry:
        """The member's account as a contact with a direct chat: known, or accepted now."""
        known = db.session.scalar(
            select(ChatAccount).where(
                ChatAccount.integration_id == integration.id,
                ChatAccount.external_id == account_id,
                ChatAccount.is_active.is_(True),
            )
        )
        if known is not None and (known.extra or {}).get("room_id"):
            return DirectoryEntry(account_id, known.name, None, dict(known.extra or {}))
        client = ChatworkClient(integration)
        for request in client.incoming_requests():
            if str(request.get("account_id")) == account_id and request.get("request_id"):
                accepted = client.accept_request(int(request["request_id"]))
                if accepted is not None and accepted.external_id == account_id:
                    return accepted
        config = integration.config or {}
        raise SignInPending(
            _("Almost done: Chatwork sends your notifications from %(account)s (Chatwork ID: "
              "%(chatwork_id)s), which is not one of your contacts yet. In Chatwork, send it a "
              "contact request, then press “I sent the request”.",
              account=config.get("account_name") or integration.display_name,
              chatwork_id=config.get("chatwork_id") or "—"),
            {"account_id": account_id, "name": name},
        )  # fmt: skip
