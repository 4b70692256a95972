"""A member links their own chat account by signing in at the provider ("Connect my account").

The round trip keeps the admin wizards' OAuth rules (reliability.md OA-01…OA-12): a fresh
256-bit ``state`` stored hashed in a :class:`SignInSession` bound to the browser session, the
member, the organization and the provider, ten minutes to live, consumed with a
compare-and-set before any token request; a PKCE verifier; its own redirect URI per provider
(``/me/accounts/<key>/callback``, the mix-up defence) and an id_token ``nonce``.

What the provider signs is checked by the provider (``ChatProvider.member_sign_in``); this
module turns the verified identity into a link: the account of the company's directory with
that id (added when the directory has not seen it yet), linked with method ``self`` and
confirmed, audited and announced like every link. An account linked to someone else is
refused and the admins are told.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import session
from flask_babel import gettext as _
from sqlalchemy import delete, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..auth.sessions import current_hash
from ..crypto import SecretUnavailable, StoredSecret
from ..database import utcnow
from ..extensions import db
from ..integrations import linking
from ..integrations.models import (
    AccountLink,
    ChatAccount,
    Integration,
    LinkMethod,
    SignInSession,
)
from ..integrations.pipeline import SETUP_TTL, claim_state, hash_state, state_problem
from ..integrations.providers.base import (
    ChatProvider,
    DirectoryEntry,
    MemberSignIn,
    ProviderError,
    SignInPending,
    SignInRefused,
    SignInRequest,
)
from ..integrations.providers.oauth import member_redirect_uri, pkce_pair
from ..integrations.registry import providers
from ..integrations.services import LIVE_STATES, find_integration
from . import invitations, services

log = logging.getLogger("portal.me.self_link")

#: Where this browser's session keeps a sign-in waiting for the member's step (Chatwork's
#: contact request), and for how long.
PENDING_KEY = "self_link_pending"
PENDING_TTL = timedelta(days=2)


class SignInFailed(Exception):
    """The member's sign-in ends without a link; the message is shown on /me/accounts."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def redirect_uri(provider: ChatProvider) -> str:
    """The one redirect URI registered for members' sign-in with ``provider``."""
    return member_redirect_uri(provider.key)


def connectable(user: User) -> list[tuple[ChatProvider, Integration]]:
    """The providers the member's company has connected whose sign-in can link them."""
    organization = db.session.get(Organization, user.organization_id)
    if organization is None:
        return []
    found = []
    for provider in providers.all():
        sign_in = provider.member_sign_in()
        integration = find_integration(organization, provider.key)
        if (
            sign_in is not None
            and integration is not None
            and integration.state in LIVE_STATES
            and sign_in.available(integration)
        ):
            found.append((provider, integration))
    return found


def _sign_in(user: User, provider: ChatProvider) -> tuple[MemberSignIn, Integration]:
    """The provider's sign-in and the member's company's live connection with it."""
    sign_in = provider.member_sign_in()
    if sign_in is None:
        raise SignInFailed(_("This chat tool does not offer sign-in for members."), 404)
    organization = db.session.get(Organization, user.organization_id)
    integration = find_integration(organization, provider.key) if organization else None
    if integration is None or integration.state not in LIVE_STATES:
        raise SignInFailed(
            _("Your company has not connected %(provider)s.", provider=provider.name), 404
        )
    if not sign_in.available(integration):
        raise SignInFailed(_("This chat tool does not offer sign-in for members."), 404)
    return sign_in, integration


def begin(user: User, provider: ChatProvider) -> str:
    """Start a sign-in for ``user``; commits the state record and returns the provider's URL."""
    sign_in, integration = _sign_in(user, provider)
    # One sign-in at a time per member and tool: an earlier unfinished one stops working.
    db.session.execute(
        delete(SignInSession).where(
            SignInSession.user_id == user.id, SignInSession.provider == provider.key
        )
    )
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    uri = redirect_uri(provider)
    db.session.add(
        SignInSession(
            state_hash=hash_state(state),
            organization_id=user.organization_id,
            user_id=user.id,
            integration_id=integration.id,
            browser_session=current_hash() or "",
            provider=provider.key,
            data={"nonce": nonce, "redirect_uri": uri, "code_verifier": verifier},
            expires_at=utcnow() + SETUP_TTL,
        )
    )
    db.session.commit()
    return sign_in.authorize_url(integration, SignInRequest(state, nonce, uri, challenge))


def complete(user: User, provider: ChatProvider, args: Mapping[str, str]) -> AccountLink:
    """Check and consume the state, verify who signed in and link them; commits.

    Raises :class:`SignInFailed` (nothing linked) for every refusal.
    """
    sign_in, integration = _sign_in(user, provider)
    record = _consume(user, provider, args.get("state"))
    if args.get("error"):
        if args["error"] == "access_denied":
            raise SignInFailed(_("The sign-in was cancelled. Nothing was changed."), 200)
        raise SignInFailed(
            _("%(provider)s refused the sign-in (%(code)s).", provider=provider.name,
              code=args["error"][:64])
        )  # fmt: skip
    code = args.get("code") or ""
    if not code or len(code) > 512:
        raise SignInFailed(_("The response from the provider had no authorization code."))
    if record.integration_id != integration.id:
        # The company reconnected the tool meanwhile: the sign-in was for the old connection.
        raise SignInFailed(_("The setup expired. Please start again."))
    data = _opened(record)
    try:
        entry = sign_in.identify(
            integration,
            code=code,
            redirect_uri=str(data.get("redirect_uri") or redirect_uri(provider)),
            nonce=str(data.get("nonce") or ""),
            code_verifier=str(data.get("code_verifier") or ""),
        )
    except SignInRefused as refused:
        raise SignInFailed(str(refused)) from None
    except SignInPending as pending:
        raise _pending(user, integration, provider, pending) from None
    except ProviderError as problem:
        raise _provider_failed(provider, problem) from None
    return _link(user, integration, provider, entry)


def pending_steps(user: User) -> dict[str, str]:
    """What each unfinished sign-in of this browser still asks the member to do, by provider."""
    kept = session.get(PENDING_KEY) or {}
    now = utcnow().timestamp()
    return {
        key: str(item.get("message") or "")
        for key, item in kept.items()
        if isinstance(item, dict) and item.get("user_id") == user.id and item["until"] > now
    }


def resume(user: User, provider: ChatProvider) -> AccountLink:
    """The member did the step a :class:`SignInPending` asked for ("I sent the request"):
    look again for the account they proved, and link it; commits."""
    sign_in, integration = _sign_in(user, provider)
    item = (session.get(PENDING_KEY) or {}).get(provider.key)
    if (
        not isinstance(item, dict)
        or item.get("user_id") != user.id
        or item.get("integration_id") != integration.id
        or item.get("until", 0) <= utcnow().timestamp()
    ):
        raise SignInFailed(_("The setup expired. Please start again."))
    try:
        entry = sign_in.resume(integration, item.get("resume") or {})
    except SignInRefused as refused:
        _forget_pending(provider)
        raise SignInFailed(str(refused)) from None
    except SignInPending as pending:
        raise _pending(user, integration, provider, pending) from None
    except ProviderError as problem:
        raise _provider_failed(provider, problem) from None
    link = _link(user, integration, provider, entry)
    _forget_pending(provider)
    return link


def _pending(
    user: User, integration: Integration, provider: ChatProvider, pending: SignInPending
) -> SignInFailed:
    """Remember, in this browser's session, who the member proved to be and what is left."""
    kept = dict(session.get(PENDING_KEY) or {})
    kept[provider.key] = {
        "user_id": user.id,
        "integration_id": integration.id,
        "resume": pending.resume,
        "message": str(pending),
        "until": (utcnow() + PENDING_TTL).timestamp(),
    }
    session[PENDING_KEY] = kept
    return SignInFailed(str(pending), 202)


def _forget_pending(provider: ChatProvider) -> None:
    kept = dict(session.get(PENDING_KEY) or {})
    if kept.pop(provider.key, None) is not None:
        session[PENDING_KEY] = kept


def _provider_failed(provider: ChatProvider, problem: ProviderError) -> SignInFailed:
    return SignInFailed(
        _("%(provider)s did not accept the sign-in (%(code)s). Please try again.",
          provider=provider.name, code=problem.code),
        502,
    )  # fmt: skip


def _consume(user: User, provider: ChatProvider, state: str | None) -> SignInSession:
    """The sign-in the ``state`` names, consumed (OA-01…OA-08), or :class:`SignInFailed`."""
    if not state or len(state) > 200:
        raise SignInFailed(_("The response from the provider had no valid state."))
    record = db.session.get(SignInSession, hash_state(state))
    if record is None:
        raise SignInFailed(_("This setup link is unknown or was already used."))
    organization = db.session.get(Organization, user.organization_id)
    problem = (
        state_problem(record, provider.key, organization, user)
        if organization is not None
        else _("This setup was started for another organization.")
    )
    if problem:
        log.warning("member sign-in rejected: provider=%s user=%s", provider.key, user.id)
        raise SignInFailed(problem)
    if not claim_state(SignInSession, record.state_hash):
        raise SignInFailed(_("This setup link is unknown or was already used."))
    db.session.refresh(record)
    return record


def _opened(record: SignInSession) -> dict[str, Any]:
    """The record's nonce and redirect URI, decrypted; an unreadable record ends the sign-in."""
    value = record.data
    try:
        value = value.reveal() if isinstance(value, StoredSecret) else value
    except SecretUnavailable:
        raise SignInFailed(_("This setup link is unknown or was already used.")) from None
    return dict(value) if isinstance(value, dict) else {}


def _account(integration: Integration, entry: DirectoryEntry) -> ChatAccount:
    """The directory's account for ``entry``, added when no sync has seen it yet (a new hire
    who signs in before the next sync)."""
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id,
            ChatAccount.external_id == entry.external_id,
        )
    )
    if account is not None:
        # The provider just vouched for the account (a Chatwork contact accepted now).
        account.name = entry.name
        account.extra = {**(account.extra or {}), **entry.extra}
        account.is_active = True
    else:
        account = ChatAccount(
            organization_id=integration.organization_id,
            integration_id=integration.id,
            external_id=entry.external_id,
            name=entry.name,
            email=entry.email,
            extra=dict(entry.extra),
        )
        db.session.add(account)
        db.session.flush()
    return account


def _link(
    user: User, integration: Integration, provider: ChatProvider, entry: DirectoryEntry
) -> AccountLink:
    account = _account(integration, entry)
    try:
        link = linking.link_account(
            integration, user, account, actor=user, method=LinkMethod.SELF, confirmed=True
        )
    except linking.LinkConflict:
        db.session.rollback()
        audit.record(
            "link.self_link_refused",
            organization=db.session.get(Organization, user.organization_id),
            actor=user,
            target=("user", user.id, user.name),
            data={"provider": provider.key, "external_id": entry.external_id},
        )
        db.session.commit()
        services.alert_admins("self_link_conflict", integration.id, user.id, entry.name)
        raise SignInFailed(
            _("This %(provider)s account is already linked to another member, so it was not "
              "linked to you. Your administrators were told and will check it.",
              provider=provider.name),
            409,
        ) from None  # fmt: skip
    if link.confirmed_at is None:
        # The same account was already linked to them by an e-mail match: signing in proves it.
        services.confirm(user, link)
    invitations.mark_linked(integration.id, user.id)
    db.session.commit()
    return link
