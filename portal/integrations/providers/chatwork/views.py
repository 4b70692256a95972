"""Chatwork's own pages: the name suggestions ("候補") and confirming them, one or all.

The rest of Chatwork runs on the generic routes: its provider page and setup wizard, the OAuth
callback, members, the account dialog, linking, test messages, sync and disconnect. Werkzeug
prefers these static rules to the generic ``/settings/integrations/<provider>/…`` ones.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from ....accounts.permissions import Permission, require
from ....accounts.tenancy import current_organization, member_or_404
from ....converters import parse_id
from ....htmx import is_partial_request, trigger
from ... import bp
from ...models import Integration
from ...registry import providers
from ...views.common import get_integration_or_404
from ..base import ChatProvider
from . import name_matching
from .setup import registration_values


def _provider() -> ChatProvider:
    return providers.get_or_404("chatwork")


def _live_integration() -> Integration:
    return get_integration_or_404(current_organization(), _provider())


def _suggestions_region(integration: Integration) -> str:
    return render_template(
        "integrations/providers/chatwork/_suggestions.html",
        provider=_provider(),
        integration=integration,
        report=name_matching.suggest(integration),
        contacts_url=registration_values()["contacts_url"],
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
        return redirect(url_for("integrations.provider", provider="chatwork"))
    response = current_app.make_response(_suggestions_region(integration))
    return trigger(response, {"members-changed": True, "dialog:close": True})


@bp.post("/settings/integrations/chatwork/members/<int:user_id>/suggestion")
@require(Permission.MANAGE_INTEGRATIONS)
def chatwork_confirm_one(user_id: int) -> ResponseReturnValue:
    """One-click confirm of a member's suggestion (recomputed, never taken from the form)."""
    integration = _live_integration()
    user = member_or_404(user_id)
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
        return redirect(url_for("integrations.provider", provider="chatwork"))
    response = current_app.make_response(_suggestions_region(integration))
    return trigger(response, {"members-changed": True})


@bp.get("/settings/integrations/chatwork/suggestions/list")
@require(Permission.VIEW_ORGANIZATION)
def chatwork_suggestions_region() -> ResponseReturnValue:
    """The suggestions region (reloaded when a contacts sync finishes)."""
    return _suggestions_region(_live_integration())
