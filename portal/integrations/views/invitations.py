"""Inviting a tool's unlinked members to link their own account (``me/invitations.py``):
all of them or a filter from the provider page or the member list, or one member from their
line in the list (the resend, once 24 hours have passed)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...htmx import is_partial_request
from ...me import invitations
from .. import bp, linking
from ..models import Integration
from .common import get_integration_or_404, get_member_context_or_404, get_provider_or_404
from .members import member_row_html


@bp.post("/settings/integrations/<provider>/invitations")
@require(Permission.MANAGE_INTEGRATIONS)
def invite_unlinked(provider: str) -> Response:
    """「未連携のメンバーを招待する」: e-mail every unlinked member (or those the filter ``q``
    finds) a link to link themselves, not one invited in the last 24 hours; pressing it again
    later is the resend. From the member list or the coverage (``back``) it returns there."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    query = request.form.get("q", "", type=str).strip()[:100]
    if chat.member_sign_in() is None:
        flash(_("This chat tool does not offer sign-in for members."), "error")
    else:
        _invite_and_say(integration, query)
    back = request.form.get("back")
    if back == "members":
        return redirect(
            url_for("integrations.members", provider=provider, q=query, state="unlinked")
        )
    if back == "overview":
        return redirect(url_for("integrations.index"))
    return redirect(url_for("integrations.provider", provider=provider))


def _invite_and_say(integration: Integration, query: str) -> None:
    counts = invitations.invite_unlinked(
        integration, actor=current_user._get_current_object(), query=query
    )
    flash(
        _(
            "%(invited)s members were invited by e-mail (%(dms)s also by a direct message "
            "to the account that is likely theirs); %(skipped)s were invited in the last "
            "24 hours and were not invited again.",
            invited=counts["invited"],
            dms=counts["direct_messages"],
            skipped=counts["skipped_recent"],
        ),
        "success" if counts["invited"] else "error",
    )


@bp.post("/settings/integrations/<provider>/members/<int:user_id>/invite")
@require(Permission.MANAGE_INTEGRATIONS)
def invite_member(provider: str, user_id: int) -> ResponseReturnValue:
    """Invite (or invite again) one unlinked member from their line in the list."""
    chat, integration, user = get_member_context_or_404(provider, user_id)
    row = linking.member_row(integration, user)
    invited = False
    if chat.member_sign_in() is None:
        flash(_("This chat tool does not offer sign-in for members."), "error")
    elif row.link is not None or not user.is_active:
        flash(
            _(
                "%(name)s cannot be invited: only active members without a link can.",
                name=user.name,
            ),
            "error",
        )
    else:
        counts = invitations.invite_unlinked(
            integration, actor=current_user._get_current_object(), user_ids=[user.id]
        )
        invited = counts["invited"] == 1
        if invited:
            flash(_("%(name)s was invited by e-mail.", name=user.name), "success")
        else:
            flash(
                _(
                    "%(name)s was invited in the last 24 hours and was not invited again.",
                    name=user.name,
                ),
                "error",
            )
    if not is_partial_request():
        return redirect(url_for("integrations.members", provider=provider))
    return member_row_html(chat, integration, row), 200 if invited else 422
