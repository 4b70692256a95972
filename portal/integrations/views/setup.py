"""Provider pages, the setup wizard's routes, the OAuth callback, sync and disconnect."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from ...accounts.models import User
from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...extensions import db
from ...htmx import is_partial_request, trigger
from ...me.invitations import summary as invitation_summary
from .. import bp, directory, services
from ..pipeline import CallbackRejected, SetupPipeline, callback_refused, setup_page
from .common import autolink_region, get_integration_or_404, get_provider_or_404
from .members import member_table


@bp.get("/settings/integrations/<provider>")
@require(Permission.VIEW_ORGANIZATION)
def provider(provider: str) -> ResponseReturnValue:
    """A provider's page: the wizard while not connected, else the connection and its members."""
    chat = get_provider_or_404(provider)
    organization = current_organization()
    integration = services.find_integration(organization, provider)
    if integration is None or integration.state not in services.LIVE_STATES:
        return setup_page(chat, organization, current_user)
    sync = directory.latest_sync(integration)
    autolink: dict[str, object] = {"preview": None}
    if chat.links_by_email and sync is not None and not sync.active:
        autolink = autolink_region(integration)
    return render_template(
        "integrations/provider.html",
        provider=chat,
        integration=integration,
        connector=db.session.get(User, integration.connected_by_id)
        if integration.connected_by_id
        else None,
        sync=sync,
        **autolink,
        **member_table(chat, organization, integration),
        errors={},
        invitations=invitation_summary(integration) if chat.member_sign_in() else None,
        **chat.page_context(integration),
    )


@bp.post("/settings/integrations/<provider>/<step>")
@require(Permission.MANAGE_INTEGRATIONS)
def setup_step(provider: str, step: str) -> ResponseReturnValue:
    """Submit a wizard step; the first step ("Add to Slack") starts a fresh wizard."""
    chat = get_provider_or_404(provider)
    steps = chat.setup_steps()
    if step not in {s.name for s in steps}:
        abort(404)
    organization = current_organization()
    if step == steps[0].name:
        pipeline = SetupPipeline.start(chat, organization, current_user)
    else:
        resumed = SetupPipeline.resume(chat, organization, current_user)
        if resumed is None or resumed.step.name != step:
            flash(_("The setup expired. Please start again."), "error")
            return redirect(url_for("integrations.provider", provider=provider))
        pipeline = resumed
    return pipeline.handle(request.form)


@bp.get("/<provider>/oauth/callback")
@require(Permission.MANAGE_INTEGRATIONS)
def oauth_callback(provider: str) -> ResponseReturnValue:
    """The provider's redirect back (the registered redirect URI): check, consume, exchange."""
    chat = get_provider_or_404(provider)
    organization = current_organization()
    try:
        pipeline = SetupPipeline.from_callback(
            chat, request.args.get("state"), organization, current_user
        )
    except CallbackRejected as rejected:
        response = current_app.make_response(
            callback_refused(chat, organization, current_user, rejected.message, rejected.status)
        )
    else:
        if pipeline.step.name != "callback":
            response = current_app.make_response(
                callback_refused(
                    chat,
                    organization,
                    current_user,
                    _("The setup expired. Please start again."),
                    400,
                )
            )
        else:
            response = current_app.make_response(pipeline.handle(request.args))
    # The URL carried a code: keep it out of Referer headers and caches (OA-15).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/settings/integrations/<provider>/sync")
@require(Permission.VIEW_ORGANIZATION)
def sync_status(provider: str) -> ResponseReturnValue:
    """The sync progress region (polled while a sync runs)."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    sync = directory.latest_sync(integration)
    response = current_app.make_response(
        render_template(
            "integrations/_sync_status.html", provider=chat, integration=integration, sync=sync
        )
    )
    if request.args.get("polling") and (sync is None or not sync.active):
        # The poll that sees the end tells the preview and the member list to reload.
        trigger(response, {"directory-synced": True, "members-changed": True})
    return response


@bp.post("/settings/integrations/<provider>/sync")
@require(Permission.MANAGE_INTEGRATIONS)
def resync(provider: str) -> ResponseReturnValue:
    """再同期: read the directory again in the background."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    sync = directory.start_sync(integration, current_user.id)
    if is_partial_request():
        db.session.refresh(sync)
        response = current_app.make_response(
            render_template(
                "integrations/_sync_status.html", provider=chat, integration=integration, sync=sync
            )
        )
        if not sync.active:  # finished at once (immediate mode, tiny workspace)
            trigger(response, {"directory-synced": True, "members-changed": True})
        return response
    return redirect(url_for("integrations.provider", provider=provider))


@bp.post("/settings/integrations/<provider>/disconnect")
@require(Permission.MANAGE_INTEGRATIONS)
def disconnect(provider: str) -> Response:
    """Disconnect: revoke at the provider, delete the secrets, keep the history."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    revoked = services.disconnect(chat, integration, current_user)
    if revoked:
        flash(_("%(provider)s was disconnected.", provider=chat.name), "success")
    else:
        flash(
            _(
                "%(provider)s was disconnected here, but the provider could not confirm the "
                "revocation. You can also remove the app on the provider's side.",
                provider=chat.name,
            ),
            "warning",
        )
    return redirect(url_for("integrations.provider", provider=provider))
