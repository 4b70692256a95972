"""www.chatwork.com pages: OAuth client registration, the consent page, the contacts screen.

Consent-page errors follow Chatwork's numbered codes (PDF Appendix B). Problems with the client
or the redirect URI get an error page (there is nowhere safe to redirect; the seed tells the
admin to use the browser's back button). Later problems redirect with `error` and
`error_description` ending in the numeric code [INFERENCE: the PDF lists codes, not the format].
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from sandbox.actions import NotFound, send_contact_request
from sandbox.chatwork.clients import RegistrationError, register_client
from sandbox.chatwork.models import SCOPES, ChatworkCode, OAuthClient
from sandbox.pages import error_page, redirect_to
from sandbox.state import SandboxState, current_state

bp = Blueprint("chatwork_www", __name__, url_prefix="/chatwork/www")

REGISTRATION_PATH = "/service/packages/chatwork/subpackages/oauth/client_create.php"
CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


@bp.route(REGISTRATION_PATH, methods=["GET", "POST"])
def client_create() -> str:
    """OAuthクライアント登録: creates a client and shows its ID and secret at the bottom."""
    state = current_state()
    created: OAuthClient | None = None
    error = ""
    form = request.form
    if request.method == "POST":
        try:
            with state.lock:
                created = register_client(
                    state.chatwork,
                    form.get("name", ""),
                    form.get("client_type", ""),
                    form.getlist("redirect_uri"),
                    form.getlist("scope"),
                )
        except RegistrationError as failure:
            error = str(failure)
    return render_template(
        "chatwork_client_create.html", scopes=SCOPES, created=created, error=error, form=form
    )


def _page(message: str, code: int) -> tuple[str, int]:
    return error_page("エラーが発生しました", message, 400, "chatwork", str(code))


@bp.route("/packages/oauth2/login.php", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """The consent page (the sandbox "logs in" as the account chosen on the page)."""
    state = current_state()
    params = request.values
    client_id = params.get("client_id", "")
    if not client_id:
        return _page("client_id が指定されていません。", 11000)
    with state.lock:
        client = state.chatwork.clients.get(client_id)
    if client is None:
        return _page("不正なクライアントIDです。クライアントIDをご確認ください。", 11000)
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        if len(client.redirect_uris) > 1:
            return _page("redirect_uri が指定されていません。", 13000)
        redirect_uri = client.redirect_uris[0]
    elif not urlsplit(redirect_uri).scheme:
        return _page("redirect_uri の形式が正しくありません。", 14000)
    elif redirect_uri not in client.redirect_uris:
        return _page("登録されていない redirect_uri です。", 15000)
    oauth_state = params.get("state")

    def fail(error: str, code: int, description: str) -> Response:
        detail = f"{description} ({code})"
        return redirect_to(
            redirect_uri, {"error": error, "error_description": detail, "state": oauth_state}
        )

    response_type = params.get("response_type", "")
    if not response_type:
        return fail("invalid_request", 1001, "response_type is missing")
    if response_type == "token":
        return fail("unsupported_response_type", 4001, "token is not supported")
    if response_type != "code":
        return fail("unsupported_response_type", 4002, "unknown response_type")
    scopes = params.get("scope", "").split()
    if not scopes:
        return fail("invalid_request", 5001, "scope is missing")
    if any(s not in SCOPES or s not in client.scopes for s in scopes):
        return fail("invalid_scope", 5002, "unknown scope")
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if (challenge or method) and method != "S256":
        return fail("invalid_request", 18000, "unsupported code_challenge_method")
    if challenge is not None and not CHALLENGE.fullmatch(challenge):
        return fail("invalid_request", 19000, "malformed code_challenge")
    with state.lock:
        logins = [a for a in state.chatwork.accounts.values() if a.can_login]
        # Anyone can sign in to Chatwork: a member authorizing the portal as themselves.
        members = [a for a in state.chatwork.accounts.values() if a.active and not a.can_login]
    if request.method == "POST":
        if params.get("decision") != "allow":
            return redirect_to(redirect_uri, {"error": "access_denied", "state": oauth_state})
        chosen = params.get("member_mail") or ""
        member = next(
            (a for a in members if chosen and chosen in (a.mail, str(a.account_id))), None
        )
        account_id = (
            member.account_id if member else int(params.get("account_id") or logins[0].account_id)
        )
        if member is None and account_id not in {a.account_id for a in logins}:
            return _page("アカウントを選択してください。", 3001)
        code = _create_code(state, client, account_id, redirect_uri, scopes, challenge)
        return redirect_to(redirect_uri, {"code": code, "state": oauth_state})
    return render_template(
        "chatwork_login.html",
        client=client,
        scopes=[(s, SCOPES[s]) for s in scopes],
        logins=logins,
    )


def _create_code(
    state: SandboxState,
    client: OAuthClient,
    account_id: int,
    redirect_uri: str,
    scopes: list[str],
    challenge: str | None,
) -> str:
    code = secrets.token_urlsafe(32)
    with state.lock:
        state.chatwork.codes[code] = ChatworkCode(
            code=code,
            client_id=client.client_id,
            account_id=account_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=challenge,
            expires_at=time.time() + state.settings.chatwork_code_ttl,
        )
    return code


@bp.route("/contacts.php", methods=["GET", "POST"])
def contacts() -> Response | str:
    """コンタクト管理: an account's contacts and the contact requests it is waiting on; a
    member (by e-mail) can send a contact request to a notification account from here."""
    state = current_state()
    with state.lock:
        logins = [a for a in state.chatwork.accounts.values() if a.can_login]
        account_id = int(request.values.get("account_id") or logins[0].account_id)
        if request.method == "POST" and request.form.get("action") == "send":
            sender = request.form.get("from_mail", "")
            target = int(request.form.get("to_account_id") or account_id)
            with contextlib.suppress(NotFound):  # an unknown address: nothing is sent
                send_contact_request(state, sender, target, request.form.get("message", ""))
            return redirect(url_for(".contacts", account_id=account_id))
        if request.method == "POST":
            request_id = int(request.form.get("request_id", "0"))
            if request_id in state.chatwork.requests:
                state.chatwork.accept_request(request_id)
            return redirect(url_for(".contacts", account_id=account_id))
        account = state.chatwork.accounts[account_id]
        listed = state.chatwork.contacts_of(account_id)
        pending = [
            (r, state.chatwork.accounts[r.to_id])
            for r in state.chatwork.requests.values()
            if r.from_id == account_id
        ]
    return render_template(
        "chatwork_contacts.html", account=account, contacts=listed, pending=pending, logins=logins
    )
