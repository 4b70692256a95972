"""Inviting a tool's unlinked members to link their own account (``me/invitations.py``)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...me import invitations
from .. import bp
from .common import get_integration_or_404, get_provider_or_404


@bp.post("/settings/integrations/<provider>/invitations")
@require(Permission.MANAGE_INTEGRATIONS)
def invite_unlinked(provider: str) -> Response:
    """「未連携のメンバーを招待する」: e-mail every unlinked member (or those the filter ``q``
    finds) a link to link themselves, not one invited in the last 24 hours; pressing it again
    later is the resend."""
    chat = get_provider_or_404(provider)
    integration = get_integration_or_404(current_organization(), chat)
    if chat.member_sign_in() is None:
        flash(_("This chat tool does not offer sign-in for members."), "error")
    else:
        counts = invitations.invite_unlinked(
            integration,
            actor=current_user._get_current_object(),
            query=request.form.get("q", "", type=str).strip()[:100],
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
            "success",
        )
    return redirect(url_for("integrations.provider", provider=provider))
