"""Linking members to chat accounts: list, account dialog, link/unlink, test message, auto-link.

One set of views for every provider; a provider only brings its directory. HTMX requests get
the changed region (the member row, the dialog's list, the preview); plain form posts get a
redirect, so every action also works without JavaScript.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ...accounts.models import Organization
from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...converters import parse_id
from ...extensions import db, htmx
from ...htmx import is_partial_request, trigger
from ...me import invitations
from ...paging import page_number, search_text
from .. import bp, linking, services
from ..models import ChatAccount, Integration
from ..providers.base import ChatProvider
from .common import (
    autolink_region,
    get_integration_or_404,
    get_member_context_or_404,
    get_provider_or_404,
)

#: Accounts per page in the dialog.
ACCOUNTS_PER_PAGE = 20
FILTERS = ("", "linked", "unlinked")


def _member_state() -> str:
    value = request.args.get("state", "")
    return value if value in FILTERS else ""


def _invited(
    provider: ChatProvider, integration: Integration | None, rows: list[linking.MemberRow]
) -> dict[int, invitations.MemberInvitation] | None:
    """The latest invitation of each unlinked member on the page; ``None`` when this tool
    cannot invite (no member sign-in, or not connected)."""
    if integration is None or provider.member_sign_in() is None:
        return None
    return invitations.for_members(integration, [row.user.id for row in rows if not row.link])


def member_row_html(
    provider: ChatProvider, integration: Integration, row: linking.MemberRow, *, oob: bool = False
) -> str:
    """One member's line after a change (link, unlink, test, invitation)."""
    return render_template(
        "integrations/linking/_member_row.html",
        provider=provider,
        integration=integration,
        row=row,
        invited=_invited(provider, integration, [row]),
        oob=oob,
    )


def _back_to_members(provider: str) -> Response:
    return redirect(url_for("integrations.members", provider=provider))


@bp.get("/settings/integrations/<provider>/members")
@require(Permission.VIEW_ORGANIZATION)
def members(provider: str) -> ResponseReturnValue:
    """Members and their chat accounts: search, linked/unlinked filter, paging."""
    chat = get_provider_or_404(provider)
    organization = current_organization()
    integration = services.find_integration(organization, provider)
    if integration is not None and integration.state not in services.LIVE_STATES:
        integration = None
    template = (
        "integrations/linking/_member_table.html"
        if is_partial_request()
        else "integrations/linking/members.html"
    )
    return render_template(
        template,
        provider=chat,
        integration=integration,
        **member_table(
            chat,
            organization,
            integration,
            query=search_text(),
            state=_member_state(),
            page=page_number(),
        ),
    )


def member_table(
    chat: ChatProvider,
    organization: Organization,
    integration: Integration | None,
    *,
    query: str = "",
    state: str = "",
    page: int = 1,
) -> dict[str, object]:
    """What the member table shows (here and on the provider page): one page of members with
    their links and, where the tool can invite, their latest invitation."""
    per_page = current_app.config["MEMBERS_PER_PAGE"]
    rows, total = linking.list_members(
        integration, organization, query=query, state=state, page=page, per_page=per_page
    )
    return {
        "rows": rows,
        "invited": _invited(chat, integration, rows),
        "total": total,
        "query": query,
        "state": state,
        "page": page,
        "pages": max(1, -(-total // per_page)),
    }


@bp.get("/settings/integrations/<provider>/members/<int:user_id>/choose")
@require(Permission.MANAGE_INTEGRATIONS)
def choose_account(provider: str, user_id: int) -> ResponseReturnValue:
    """The "<Provider>アカウントを選択してください" dialog, or just its list when searching."""
    chat, integration, user = get_member_context_or_404(provider, user_id)
    return _choices(chat, integration, user, search_text(), page_number())


def _choices(
    chat: ChatProvider,
    integration: object,
    user: object,
    query: str,
    page: int,
    error: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    choices, total = linking.list_accounts(
        integration,  # type: ignore[arg-type]
        query=query,
        page=page,
        per_page=ACCOUNTS_PER_PAGE,
    )
    only_list = htmx and htmx.target == "integrations-account-choices"
    template = (
        "integrations/linking/_account_choices.html"
        if only_list or error
        else "integrations/linking/_choose_account_dialog.html"
    )
    body = render_template(
        template,
        provider=chat,
        member=user,
        current=linking.find_link(integration, user.id),  # type: ignore[arg-type,attr-defined]
        choices=choices,
        total=total,
        query=query,
        page=page,
        pages=max(1, -(-total // ACCOUNTS_PER_PAGE)),
        error=error,
    )
    return body, status


@bp.post("/settings/integrations/<provider>/members/<int:user_id>/link")
@require(Permission.MANAGE_INTEGRATIONS)
def link(provider: str, user_id: int) -> ResponseReturnValue:
    """このアカウントを選択する: link, close the dialog, refresh the member's row."""
    chat, integration, user = get_member_context_or_404(provider, user_id)
    account_id = parse_id(request.form.get("chat_account_id"))
    account = (
        db.session.scalar(
            select(ChatAccount).where(
                ChatAccount.id == account_id, ChatAccount.integration_id == integration.id
            )
        )
        if account_id is not None
        else None
    )
    try:
        if account is None:
            raise linking.LinkConflict(_("Choose an account from the list."))
        linking.link_account(integration, user, account, actor=current_user)
    except linking.LinkConflict as conflict:
        if not is_partial_request():
            flash(str(conflict), "error")
            return _back_to_members(provider)
        return _choices(chat, integration, user, "", 1, error=str(conflict), status=422)
    flash(
        _("%(name)s is now linked to %(account)s.", name=user.name, account=account.name), "success"
    )
    if not is_partial_request():
        return _back_to_members(provider)
    response = current_app.make_response(
        member_row_html(chat, integration, linking.member_row(integration, user), oob=True)
    )
    return trigger(response, {"dialog:close": True})


@bp.post("/settings/integrations/<provider>/members/<int:user_id>/unlink")
@require(Permission.MANAGE_INTEGRATIONS)
def unlink(provider: str, user_id: int) -> ResponseReturnValue:
    """Remove a member's link (the button asks for confirmation first)."""
    chat, integration, user = get_member_context_or_404(provider, user_id)
    if linking.unlink_account(integration, user, actor=current_user):
        flash(_("%(name)s was unlinked.", name=user.name), "success")
    if not is_partial_request():
        return _back_to_members(provider)
    return member_row_html(chat, integration, linking.member_row(integration, user))


@bp.post("/settings/integrations/<provider>/members/<int:user_id>/test")
@require(Permission.MANAGE_INTEGRATIONS)
def send_test(provider: str, user_id: int) -> ResponseReturnValue:
    """Send the member a test message on this provider's linked account, through the real
    delivery pipeline; a member without an account here gets none (and no button)."""
    chat, integration, user = get_member_context_or_404(provider, user_id)
    try:
        account = linking.send_test_message(integration, user, actor=current_user)
    except linking.NotLinked:
        flash(
            _(
                "%(name)s has no linked %(provider)s account, so no test message was sent.",
                name=user.name,
                provider=chat.name,
            ),
            "error",
        )
        if not is_partial_request():
            return _back_to_members(provider)
        return member_row_html(chat, integration, linking.member_row(integration, user)), 422
    flash(
        _(
            "A test message to %(name)s was queued on %(provider)s for the account %(account)s.",
            name=user.name,
            provider=chat.name,
            account=account.name,
        ),
        "success",
    )
    if not is_partial_request():
        return _back_to_members(provider)
    return member_row_html(chat, integration, linking.member_row(integration, user))


@bp.get("/settings/integrations/<provider>/members/auto-link")
@require(Permission.VIEW_ORGANIZATION)
def autolink_preview(provider: str) -> ResponseReturnValue:
    """What e-mail auto-linking would do: matches, addresses claimed twice, who is left."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    return render_template(
        "integrations/linking/_autolink_preview.html"
        if is_partial_request()
        else "integrations/linking/autolink.html",
        provider=chat,
        integration=integration,
        **autolink_region(integration),
    )


@bp.post("/settings/integrations/<provider>/members/auto-link")
@require(Permission.MANAGE_INTEGRATIONS)
def autolink(provider: str) -> ResponseReturnValue:
    """Confirm the preview: link every unambiguous e-mail match in one transaction."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    count = linking.apply_email_matches(integration, actor=current_user)
    flash(_("%(count)s members were linked by e-mail address.", count=count), "success")
    if not is_partial_request():
        return redirect(url_for("integrations.provider", provider=provider))
    return _autolink_changed(chat, integration)


@bp.post("/settings/integrations/<provider>/members/auto-link/undo")
@require(Permission.MANAGE_INTEGRATIONS)
def autolink_undo(provider: str) -> ResponseReturnValue:
    """この自動紐付けを取り消す: unlink what the batch made and is still as it made it."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    batch_id = parse_id(request.form.get("batch_id"))
    try:
        if batch_id is None:
            raise linking.LinkConflict(_("This automatic linking was not found."))
        count = linking.undo_batch(integration, batch_id, actor=current_user)
    except linking.LinkConflict as conflict:
        flash(str(conflict), "error")
    else:
        flash(
            _("The automatic linking was undone: %(count)s members were unlinked.", count=count),
            "success",
        )
    if not is_partial_request():
        return redirect(url_for("integrations.provider", provider=provider))
    return _autolink_changed(chat, integration)


def _autolink_changed(chat: ChatProvider, integration: Integration) -> Response:
    """The refreshed auto-link region; the member list reloads itself (HX-Trigger)."""
    response = current_app.make_response(
        render_template(
            "integrations/linking/_autolink_preview.html",
            provider=chat,
            integration=integration,
            **autolink_region(integration),
        )
    )
    return trigger(response, {"members-changed": True})
