"""Chatwork's own pages: the 3-step setup with the organization's OAuth client, the callback,
the connected page (connected account, client settings, backlog, name suggestions).

The generic routes (members, dialog, link, test message, sync, disconnect) serve Chatwork too;
these add what Slack does not have. Werkzeug prefers these static rules to the generic
``/settings/integrations/<provider>…`` and ``/<provider>/oauth/callback`` ones.
"""

from __future__ import annotations

from datetime import timedelta
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
from ...database import utcnow
from ...extensions import db
from ...htmx import is_partial_request, trigger
from .. import bp, directory, linking, name_matching, services
from ..models import AccountLink, Integration, SetupSession
from ..pipeline import CallbackRejected, SetupPipeline, render_setup_error, render_wizard
from ..providers.base import ChatProvider
from ..providers.chatwork import CLIENT_NAME, SCOPES, ChatworkProvider
from ..registry import providers

#: A failed wizard's client ID and secret are offered again for this long.
KEEP_FORM_FOR = timedelta(hours=1)


def _provider() -> ChatProvider:
    return providers.get_or_404("chatwork")


def _last_wizard() -> dict[str, Any]:
    """This admin's latest Chatwork wizard in this browser (even a failed one), decrypted."""
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
    if record is None:
        return {}
    return SetupPipeline(_provider(), record).data


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


def previous_client(
    integration: Integration | None, pipeline: SetupPipeline | None = None
) -> tuple[str, str | None]:
    """The client ID and secret entered last: this wizard, the last one, or the connection."""
    for data in (pipeline.data if pipeline else {}, _last_wizard()):
        if data.get("client_id"):
            secret = data.get("client_secret") or data.get("stored_client_secret")
            return str(data["client_id"]), str(secret) if secret else None
    return _saved_client(integration)


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
    client_id, secret = previous_client(integration, pipeline)
    if pipeline is not None and pipeline.fetch("client_id") is not None:
        client_id = str(pipeline.fetch("client_id"))
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
        client_form={"client_id": client_id, "secret_set": bool(secret)},
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
    client_id, secret = _saved_client(integration)
    return {
        "provider": chat,
        "integration": integration,
        "connector": db.session.get(User, integration.connected_by_id)
        if integration.connected_by_id
        else None,
        "sync": sync,
        "report": None if sync is None or sync.active else name_matching.suggest(integration),
        "backlog": backlog(integration),
        "client_form": {"client_id": client_id, "secret_set": bool(secret)},
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

    A blank secret keeps the one entered before for the same client ID (never echoed).
    """
    organization = current_organization()
    integration = services.find_integration(organization, "chatwork")
    old_id, old_secret = previous_client(integration)
    pipeline = SetupPipeline.start(_provider(), organization, current_user)
    pipeline.bind("organization_id", organization.id)
    client_id = request.form.get("client_id", "").strip() or old_id
    if old_secret and client_id == old_id:
        pipeline.bind("stored_client_secret", old_secret)
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
        if user_id.isdigit() and account_id.isdigit() and len(value) < 40:
            pairs.add((int(user_id), int(account_id)))
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
