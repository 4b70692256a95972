"""Chatwork's own pages: the 3-step setup with the organization's OAuth client, the callback,
the connected page (connected account, client settings, backlog, name suggestions).

The generic routes (members, dialog, link, test message, sync, disconnect) serve Chatwork too;
these add what Slack does not have. Werkzeug prefers these static rules to the generic
``/settings/integrations/<provider>…`` and ``/<provider>/oauth/callback`` ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ...accounts.models import User
from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...auth.sessions import current_hash
from ...converters import parse_id
from ...database import utcnow
from ...extensions import db
from ...htmx import is_partial_request, trigger
from .. import bp, directory, linking, name_matching, services
from ..models import AccountLink, Integration, SetupSession
from ..pipeline import CallbackRejected, SetupPipeline, render_setup_error, render_wizard
from ..providers.base import ChatProvider
from ..providers.chatwork import CLIENT_NAME, SCOPES, ChatworkProvider
from ..registry import providers

#: A failed wizard's client ID is offered again, and a secret typed in it kept, for this long.
KEEP_FORM_FOR = timedelta(hours=1)


def _provider() -> ChatProvider:
    return providers.get_or_404("chatwork")


def _last_wizard() -> SetupPipeline | None:
    """This admin's latest Chatwork wizard in this browser (even a failed one)."""
    record = db.session.scalar(
        select(SetupSession)
        .where(
            SetupSession.organization_id == current_organization().id,
            SetupSession.user_id == current_user.id,
            SetupSession.provider == "chatwork",
            SetupSession.browser_session == (current_hash() or ""),
            SetupSession.created_at > utcnow() - KEEP_FORM_FOR,
        )
        .order_by(SetupSession.created_at.desc())
        .limit(1)
    )
    return None if record is None else SetupPipeline(_provider(), record)


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
    query, and the seal to the wizard's owner).
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


def kept_client(
    integration: Integration | None, pipeline: SetupPipeline | None = None
) -> KeptClient:
    """The client entered last (this wizard, else the last one, else the connection's)."""
    saved_id, saved_secret = _saved_client(integration)
    wizard = pipeline
    if wizard is None or wizard.fetch("client_id") is None:
        wizard = _last_wizard()
    if wizard is None or wizard.fetch("client_id") is None:
        return KeptClient(saved_id, saved_id=saved_id, saved_secret=saved_secret)
    typed_at = _typed_recently(wizard.fetch("secret_typed_at"))
    return KeptClient(
        client_id=str(wizard.fetch("client_id")),
        typed_secret=wizard.fetch_sealed("client_secret") if typed_at else None,
        typed_at=typed_at,
        saved_id=saved_id,
        saved_secret=saved_secret,
    )


def render_client_step(
    *,
    pipeline: SetupPipeline | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
    returned: bool = False,
) -> ResponseReturnValue:
    """Steps 1–3 with the client form kept (the secret only as "set"), and a message."""
    chat = _provider()
    steps = chat.setup_steps()
    if steps[0].name != "client":  # not the client-credentials wizard: the plain error page
        return render_setup_error(chat, message or _("The setup expired. Please start again."),
                                  status if status >= 400 else 400)  # fmt: skip
    integration = services.find_integration(current_organization(), "chatwork")
    client = kept_client(integration, pipeline)
    kept = 0
    if integration is not None:
        kept = (
            db.session.scalar(
                select(func.count())
                .select_from(AccountLink)
                .where(AccountLink.integration_id == integration.id)
            )
            or 0
        )
    body = render_wizard(
        chat,
        steps,
        0,
        integration=integration,
        kept_links=kept,
        client_form=client.form(),
        errors=errors or {},
        message=message,
        returned=returned,
        **_registration_values(),
    )
    return body, status


def _registration_values() -> dict[str, Any]:
    base = str(current_app.config["CHATWORK_WWW_URL"]).rstrip("/")
    return {
        "client_name": CLIENT_NAME,
        "redirect_uri": f"{str(current_app.config['PUBLIC_BASE_URL']).rstrip('/')}"
        "/chatwork/oauth/callback",
        "scopes": SCOPES,
        "registration_url": f"{base}/service/packages/chatwork/subpackages/oauth/client_create.php",
        "contacts_url": f"{base}/contacts.php",
    }


@bp.get("/settings/integrations/chatwork")
@require(Permission.VIEW_ORGANIZATION)
def chatwork_page() -> ResponseReturnValue:
    """Chatwork: the 3-step setup while not connected; else the connection and its members."""
    organization = current_organization()
    integration = services.find_integration(organization, "chatwork")
    if integration is None or integration.state not in services.LIVE_STATES:
        pipeline = None
        if current_user.can(Permission.MANAGE_INTEGRATIONS):
            pipeline = SetupPipeline.resume(_provider(), organization, current_user)
        # Waiting for the callback means the admin came back with the browser (Chatwork's
        # error page for a wrong client ID, or a closed tab): offer the form again.
        returned = pipeline is not None and pipeline.record.step_index > 0
        return render_client_step(pipeline=pipeline, returned=returned)
    return render_template("integrations/providers/chatwork/page.html", **_connected(integration))


def _connected(integration: Integration) -> dict[str, Any]:
    organization = current_organization()
    chat = _provider()
    per_page = current_app.config["MEMBERS_PER_PAGE"]
    rows, total = linking.list_members(
        integration, organization, query="", state="", page=1, per_page=per_page
    )
    sync = directory.latest_sync(integration)
    client = kept_client(integration)
    return {
        "provider": chat,
        "integration": integration,
        "connector": db.session.get(User, integration.connected_by_id)
        if integration.connected_by_id
        else None,
        "sync": sync,
        "report": None if sync is None or sync.active else name_matching.suggest(integration),
        "backlog": backlog(integration),
        "client_form": client.form(client.saved_id),
        "errors": {},
        "rows": rows,
        "total": total,
        "query": "",
        "state": "",
        "page": 1,
        "pages": max(1, -(-total // per_page)),
        **_registration_values(),
    }


def backlog(integration: Integration) -> dict[str, Any]:
    """Chatwork deliveries waiting for this organization and how long the pacing needs."""
    from ...notifications.models import Channel, Delivery, DeliveryState

    waiting = (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.organization_id == integration.organization_id,
                Delivery.channel == Channel.CHATWORK,
                Delivery.state.in_(
                    (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING)
                ),
            )
        )
        or 0
    )
    rate = ChatworkProvider.send_rate()
    seconds = int(waiting / rate) if waiting else 0
    return {
        "waiting": waiting,
        "minutes": max(1, -(-seconds // 60)) if waiting else 0,
        "per_minute": round(rate * 60),
        "show": waiting > 10,
    }


@bp.post("/settings/integrations/chatwork/client")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_client() -> ResponseReturnValue:
    """この内容で保存する: keep the client ID/secret in a fresh wizard, go to Chatwork's consent.

    A blank secret keeps the one typed in this setup attempt (so correcting only the ID after
    Chatwork's error page works) or the connection's for the same ID; it is never echoed.
    """
    organization = current_organization()
    kept = kept_client(services.find_integration(organization, "chatwork"))
    client_id = request.form.get("client_id", "").strip() or kept.client_id
    secret, typed_at = kept.secret_for(client_id)
    pipeline = SetupPipeline.start(_provider(), organization, current_user)
    pipeline.bind("organization_id", organization.id)
    if secret:
        pipeline.bind_sealed("client_secret", secret)
    if typed_at:
        pipeline.bind("secret_typed_at", typed_at)
    return pipeline.handle({**request.form.to_dict(), "client_id": client_id})


@bp.get("/chatwork/oauth/callback")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_callback() -> ResponseReturnValue:
    """Chatwork's redirect back: check and consume the state, exchange, read GET /me.

    A refused state (missing, unknown, replayed, expired, another session…) answers 400 with
    step 3 and the form kept; nothing is requested from Chatwork (OA-01…OA-08).
    """
    chat = _provider()
    try:
        pipeline = SetupPipeline.from_callback(
            chat, request.args.get("state"), current_organization(), current_user
        )
    except CallbackRejected as rejected:
        response = current_app.make_response(
            render_client_step(message=rejected.message, status=rejected.status)
        )
    else:
        if pipeline.step.name != "callback":
            response = current_app.make_response(
                render_client_step(message=_("The setup expired. Please start again."), status=400)
            )
        else:
            response = current_app.make_response(pipeline.handle(request.args))
    # The URL carried a code: keep it out of Referer headers and caches (OA-15).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _live_integration() -> Integration:
    from .common import get_integration_or_404

    return get_integration_or_404(current_organization(), _provider())


def _suggestions_region(integration: Integration) -> str:
    return render_template(
        "integrations/providers/chatwork/_suggestions.html",
        provider=_provider(),
        integration=integration,
        report=name_matching.suggest(integration),
        contacts_url=_registration_values()["contacts_url"],
    )


@bp.get("/settings/integrations/chatwork/suggestions")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_suggestions() -> ResponseReturnValue:
    """The preview of "confirm all suggestions": every pair that would be linked."""
    integration = _live_integration()
    context = {
        "provider": _provider(),
        "integration": integration,
        "report": name_matching.suggest(integration),
    }
    if is_partial_request():
        return render_template("integrations/providers/chatwork/_confirm_dialog.html", **context)
    return render_template("integrations/providers/chatwork/confirm.html", **context)


def _pairs(values: list[str]) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for value in values[:20000]:
        user_id, _sep, account_id = value.partition(":")
        member, account = parse_id(user_id), parse_id(account_id)
        if member is not None and account is not None:
            pairs.add((member, account))
    return pairs


@bp.post("/settings/integrations/chatwork/suggestions")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_confirm_suggestions() -> ResponseReturnValue:
    """Confirm the previewed suggestions (only those still suggested) in one transaction."""
    integration = _live_integration()
    count = name_matching.apply_suggestions(
        integration, actor=current_user, only=_pairs(request.form.getlist("pair"))
    )
    flash(_("%(count)s members were linked from the suggestions.", count=count), "success")
    if not is_partial_request():
        return redirect(url_for("integrations.chatwork_page"))
    response = current_app.make_response(_suggestions_region(integration))
    return trigger(response, {"members-changed": True, "dialog:close": True})


@bp.post("/settings/integrations/chatwork/members/<int:user_id>/suggestion")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_confirm_one(user_id: int) -> ResponseReturnValue:
    """One-click confirm of a member's suggestion (recomputed, never taken from the form)."""
    from .common import get_member_or_404

    integration = _live_integration()
    user = get_member_or_404(current_organization(), user_id)
    suggestion = name_matching.suggestion_for(integration, user.id)
    if suggestion is None:
        flash(_("This suggestion is no longer valid. Choose the account by hand."), "error")
    else:
        name_matching.apply_suggestions(
            integration,
            actor=current_user,
            only={(suggestion.user_id, suggestion.account_id)},
            summary=False,
        )
        flash(
            _(
                "%(name)s is now linked to %(account)s.",
                name=user.name,
                account=suggestion.account_name,
            ),
            "success",
        )
    if not is_partial_request():
        return redirect(url_for("integrations.chatwork_page"))
    response = current_app.make_response(_suggestions_region(integration))
    return trigger(response, {"members-changed": True})


@bp.get("/settings/integrations/chatwork/suggestions/list")
@require(Permission.VIEW_ORGANIZATION)
def chatwork_suggestions_region() -> ResponseReturnValue:
    """The suggestions region (reloaded when a contacts sync finishes)."""
    return _suggestions_region(_live_integration())
