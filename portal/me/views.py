"""``/me/accounts``: the signed-in member's links, channel choice and recent deliveries;
the confirmation page linked from the first DM; the page a DM without buttons links to for
its choices (``/me/notifications/<token>``); the admin's notification policy."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..accounts.models import Organization, User
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..integrations.pipeline import top_level_redirect
from ..integrations.registry import providers
from ..notifications.actions import PageTokenInvalid, acknowledged_note
from ..notifications.actions import label as choice_label
from ..notifications.explain import STATE_LABELS, explain_outcome
from ..notifications.models import Delivery, Notification
from . import actions as dm_actions
from . import bp, invitations, notices, self_link, services


@bp.get("/me/accounts")
@require(Permission.VIEW_OWN_ACCOUNTS)
def accounts() -> str:
    """The member's linked chat accounts, their channel choice and twenty recent deliveries."""
    user = current_user._get_current_object()
    organization = db.session.get(Organization, user.organization_id)
    deliveries = db.session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Notification.recipient_id == user.id,
            Notification.organization_id == user.organization_id,
        )
        .order_by(Delivery.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "me/accounts.html",
        organization=organization,
        links=services.own_links(user),
        connectable=self_link.connectable(user),
        pending_steps=self_link.pending_steps(user),
        last_sent=services.last_sent_by_account(user),
        deliveries=deliveries,
        choice=user.channel_preference or "chat",
        state_labels=STATE_LABELS,
        explain_outcome=explain_outcome,
    )


@bp.post("/me/accounts/<provider>/connect")
@require(Permission.VIEW_OWN_ACCOUNTS)
def connect(provider: str) -> ResponseReturnValue:
    """「アカウントを連携する」: off to the provider's sign-in as the member (a top-level
    navigation: HTMX requests get ``HX-Redirect``)."""
    chat = providers.get_or_404(provider)
    try:
        url = self_link.begin(current_user._get_current_object(), chat)
    except self_link.SignInFailed as failed:
        flash(failed.message, "error")
        return redirect(url_for("me.accounts"))
    return top_level_redirect(url)


@bp.get("/me/accounts/<provider>/callback")
@require(Permission.VIEW_OWN_ACCOUNTS)
def connect_callback(provider: str) -> ResponseReturnValue:
    """The provider's redirect back after the member signed in: check, verify, link."""
    chat = providers.get_or_404(provider)
    try:
        link = self_link.complete(current_user._get_current_object(), chat, request.args)
    except self_link.SignInFailed as failed:
        _flash_failure(failed)
    else:
        _flash_linked(chat.name, link)
    response = current_app.make_response(redirect(url_for("me.accounts")))
    # The URL carried a code: keep it out of Referer headers and caches (OA-15).
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/me/accounts/<provider>/resume")
@require(Permission.VIEW_OWN_ACCOUNTS)
def connect_resume(provider: str) -> Response:
    """「リクエストを送りました」: the member did the step their sign-in was waiting for."""
    chat = providers.get_or_404(provider)
    try:
        link = self_link.resume(current_user._get_current_object(), chat)
    except self_link.SignInFailed as failed:
        _flash_failure(failed)
    else:
        _flash_linked(chat.name, link)
    return redirect(url_for("me.accounts"))


def _flash_failure(failed: self_link.SignInFailed) -> None:
    # A step left to do (202) is the card on /me/accounts, not a message on top of it.
    if failed.status != 202:
        flash(failed.message, "success" if failed.status == 200 else "error")


def _flash_linked(provider_name: str, link: AccountLink) -> None:
    account = db.session.get(ChatAccount, link.chat_account_id)
    flash(
        _(
            "Your %(provider)s account %(account)s is linked: your notifications now arrive there.",
            provider=provider_name,
            account=account.name if account else "",
        ),
        "success",
    )


@bp.route("/me/invitations/<token>", methods=["GET", "POST"])
@require(Permission.VIEW_OWN_ACCOUNTS)
def invitation(token: str) -> ResponseReturnValue:
    """An invitation's link: "link this account?", and on POST the tool's own sign-in. A
    forged, used, expired or someone else's link gets a clear page and links nothing."""
    user = current_user._get_current_object()
    found = invitations.find(token)
    problem = invitations.problem(found, user)
    integration = db.session.get(Integration, found.integration_id) if found else None
    chat = providers.get(integration.provider) if integration else None
    if problem is None and chat is None:
        problem = _("This invitation link is not valid.")
    if problem is not None or found is None or chat is None:
        page = render_template("me/invitation.html", problem=problem, token=token)
        response = current_app.make_response((page, 404 if found is None else 410))
    elif request.method == "GET":
        response = current_app.make_response(
            render_template("me/invitation.html", problem=None, token=token, provider=chat)
        )
    else:
        invitations.opened(found, user)
        try:
            return top_level_redirect(self_link.begin(user, chat))
        except self_link.SignInFailed as failed:
            flash(failed.message, "error")
            return redirect(url_for("me.accounts"))
    # The URL carries the token: keep it out of Referer headers and caches.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/me/accounts/<int:link_id>/not-me")
@require(Permission.VIEW_OWN_ACCOUNTS)
def disown(link_id: int) -> Response:
    """ "This is not me": unlink and tell the admins."""
    user = current_user._get_current_object()
    link = services.own_link_or_none(user, link_id)
    if link is None:
        abort(404)
    services.disown(user, link)
    flash(
        _(
            "The account was unlinked and your administrators were told. Notifications now"
            " arrive by e-mail."
        ),
        "success",
    )
    return redirect(url_for("me.accounts"))


@bp.post("/me/accounts/channel")
@require(Permission.VIEW_OWN_ACCOUNTS)
def channel() -> Response:
    """Store the member's channel choice (chat, e-mail, both)."""
    user = current_user._get_current_object()
    choice = request.form.get("channel", "")
    if choice not in services.CHANNEL_CHOICES:
        abort(400)
    try:
        services.set_channel(user, choice)
    except PermissionError:
        abort(403)
    flash(_("Your choice was saved."), "success")
    return redirect(url_for("me.accounts"))


def _link_from_token(token: str) -> tuple[AccountLink, ChatAccount, Integration] | None:
    ids = notices.read_confirm_token(token)
    if ids is None:
        return None
    link_id, user_id, account_id = ids
    if user_id != current_user.id:
        abort(404)  # someone else's link: do not even say it exists
    link = services.own_link_or_none(current_user, link_id)
    if link is None or link.chat_account_id != account_id:
        return None  # unlinked or relinked since the DM: the token is void
    account = db.session.get(ChatAccount, link.chat_account_id)
    integration = db.session.get(Integration, link.integration_id)
    assert account is not None and integration is not None
    return link, account, integration


@bp.route("/me/links/confirm/<token>", methods=["GET", "POST"])
@require(Permission.VIEW_OWN_ACCOUNTS)
def confirm(token: str) -> str | tuple[str, int] | Response:
    """Confirm an automatically matched account (GET shows it, POST confirms)."""
    found = _link_from_token(token)
    if found is None:
        return render_template("me/confirm_expired.html"), 400
    link, account, integration = found
    if request.method == "POST":
        released = services.confirm(current_user._get_current_object(), link)
        flash(
            _("Thank you: the account is confirmed.")
            + (
                " " + _("%(count)s held notifications are on their way.", count=released)
                if released
                else ""
            ),
            "success",
        )
        return redirect(url_for("me.accounts"))
    return render_template(
        "me/confirm.html", link=link, account=account, integration=integration, token=token
    )


@bp.route("/settings/notification-policy", methods=["GET", "POST"])
@require(Permission.MANAGE_ORGANIZATION)
def policy() -> str | Response:
    """The organization's policy: link by e-mail automatically, hold sensitive content until
    confirmed, let members choose their channel."""
    organization = current_organization()
    if request.method == "POST":
        services.set_policy(
            organization,
            actor=current_user._get_current_object(),
            hold_sensitive=request.form.get("hold_sensitive") == "on",
            allow_choice=request.form.get("allow_choice") == "on",
            auto_link=request.form.get("auto_link") == "on",
        )
        flash(_("The notification policy was saved."), "success")
        return redirect(url_for("me.policy"))
    return render_template("me/policy.html", organization=organization)


_LINK_PROBLEMS = {
    "invalid": (404, _l("This link is not valid.")),
    "expired": (410, _l("This link has expired.")),
    "used": (410, _l("This link was already used.")),
    "replaced": (
        410,
        _l("A newer message replaced this link. Please use the link in the latest message."),
    ),
}
_ANSWERED = {
    "acknowledged": _l("Thank you: the notification is acknowledged."),
    "already_acknowledged": _l("Thank you: the notification is acknowledged."),
    "confirmed": _l("Thank you: the account is confirmed."),
    "already_confirmed": _l("You already confirmed this account."),
    "disowned": _l(
        "The account was unlinked and your administrators were told. Notifications now"
        " arrive by e-mail."
    ),
}


@bp.route("/me/notifications/<token>", methods=["GET", "POST"])
@require(Permission.VIEW_OWN_ACCOUNTS)
def notification_actions(token: str) -> ResponseReturnValue:
    """A DM without buttons (Chatwork) links here: the notification and its choices (GET),
    one of them done (POST, CSRF-checked); the link is single-use and only for its recipient."""
    user = current_user._get_current_object()
    try:
        page = dm_actions.open_page(token, user)
    except PageTokenInvalid as problem:
        status, message = _LINK_PROBLEMS[problem.reason]
        return render_template("me/notification_link_invalid.html", message=message), status
    except dm_actions.Refused:
        abort(403)  # another member's link: the signed-in member is not its recipient
    if request.method == "POST":
        try:
            outcome = dm_actions.answer_page(page, user, request.form.get("action", ""))
        except dm_actions.Refused:
            abort(400)
        flash(str(_ANSWERED[outcome]), "success")
        return redirect(url_for("me.accounts"))
    acknowledged_by = (
        db.session.get(User, page.notification.acknowledged_by_id)
        if page.notification.acknowledged_by_id
        else None
    )
    return render_template(
        "me/notification_actions.html",
        page=page,
        token=token,
        acknowledged_by=acknowledged_by,
        label=choice_label,
        acknowledged_note=acknowledged_note,
    )
