"""「通知カテゴリ」 for admins (categories, company defaults and locks, the order of tools) and
「通知の受け取り設定」 for members (their own choice per category, their tool, a preview).

Thin views: the services in ``categories`` and ``choices`` validate, save and audit. A card
saved over HTMX comes back as the card; plain posts get a redirect, so it all works without
JavaScript too.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from ..accounts.models import Organization
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization
from ..converters import parse_id
from ..extensions import db
from ..htmx import is_partial_request
from ..integrations.registry import providers
from ..notifications import routing
from . import categories, choices, hours, overview
from .models import NotificationCategory

bp = Blueprint("preferences", __name__)

#: Suggestions for the time zone field (any IANA name is accepted).
COMMON_ZONES = (
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Kolkata",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Australia/Sydney",
)


def _rule_from_form() -> categories.RuleChange:
    form = request.form
    return categories.RuleChange(
        chat_on=form.get("chat_on") == "on",
        email_on=form.get("email_on") == "on",
        chat_locked=form.get("chat_locked") == "on",
        email_locked=form.get("email_locked") == "on",
        digest=form.get("digest", ""),
        digest_time=form.get("digest_time", "09:00"),
        digest_weekday=form.get("digest_weekday", "1"),
    )


def _category_card(
    category: NotificationCategory, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "preferences/_category.html", category=category, errors=errors or {}
    ), status


@bp.route("/settings/notification-categories", methods=["GET", "POST"])
@require(Permission.MANAGE_ORGANIZATION)
def category_list() -> ResponseReturnValue:
    """The categories with their defaults and locks, the order of tools, and "add"."""
    organization = current_organization()
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            created = categories.create(
                organization,
                actor=current_user._get_current_object(),
                key=request.form.get("key", "").strip(),
                label_ja=request.form.get("label_ja", ""),
                label_en=request.form.get("label_en", ""),
                description=request.form.get("description", ""),
            )
        except categories.CategoryError as problem:
            errors[problem.field] = problem.message
        else:
            flash(_("The category %(name)s was added.", name=created.label_ja), "success")
            return redirect(url_for("preferences.category_list"))
    return render_template(
        "preferences/categories.html",
        categories=categories.all_for(organization),
        order=routing.tool_order(organization),
        errors=errors,
        form=request.form if errors else {},
    ), (422 if errors else 200)


@bp.post("/settings/notification-categories/<int:category_id>")
@require(Permission.MANAGE_ORGANIZATION)
def category_update(category_id: int) -> ResponseReturnValue:
    """Save one category's names, defaults and locks (「この内容で保存する」)."""
    category = categories.get(current_organization(), category_id)
    if category is None:
        abort(404)
    try:
        changed = categories.update(
            category,
            actor=current_user._get_current_object(),
            label_ja=request.form.get("label_ja", ""),
            label_en=request.form.get("label_en", ""),
            description=request.form.get("description", ""),
            rule=_rule_from_form(),
        )
    except categories.CategoryError as problem:
        db.session.rollback()
        category = categories.get(current_organization(), category_id)
        assert category is not None
        if not is_partial_request():
            flash(problem.message, "error")
            return redirect(url_for("preferences.category_list"))
        return _category_card(category, {problem.field: problem.message}, 422)
    if changed:
        flash(_("The category %(name)s was saved.", name=category.label_ja), "success")
    if not is_partial_request():
        return redirect(url_for("preferences.category_list"))
    return _category_card(category)


@bp.post("/settings/notification-categories/tool-order")
@require(Permission.MANAGE_ORGANIZATION)
def tool_order() -> ResponseReturnValue:
    """The company's order of tools for members linked on several."""
    organization = current_organization()
    order = [request.form.get(f"tool_{index}", "") for index in range(len(providers.keys()))]
    try:
        if choices.set_tool_order(organization, order, actor=current_user._get_current_object()):
            flash(_("The order of chat tools was saved."), "success")
    except ValueError:
        flash(_("Put each chat tool in the order once."), "error")
    return redirect(url_for("preferences.category_list"))


@bp.route("/me/preferences", methods=["GET", "POST"])
@require(Permission.VIEW_OWN_ACCOUNTS)
def my_preferences() -> ResponseReturnValue:
    """The member's choice per category and their tool, with where each would go now."""
    user = current_user._get_current_object()
    organization = db.session.get(Organization, user.organization_id)
    if organization is None:
        abort(404)
    errors: dict[int, str] = {}
    if request.method == "POST":
        options = {
            category_id: value
            for name, value in request.form.items()
            if name.startswith("category_")
            and (category_id := parse_id(name.removeprefix("category_"))) is not None
        }
        tool = request.form.get("tool") or None
        digests = {
            category_id: (
                request.form.get(f"c{category_id}_digest", ""),
                request.form.get(f"c{category_id}_digest_time", ""),
                request.form.get(f"c{category_id}_digest_weekday", ""),
            )
            for name in request.form
            if name.startswith("c")
            and name.endswith("_digest")
            and (category_id := parse_id(name[1:].removesuffix("_digest"))) is not None
        }
        try:
            choices.save(user, options, tool=tool, digests=digests)
        except PermissionError:
            abort(403)
        except choices.PreferenceError as problem:
            db.session.rollback()
            errors = problem.errors
        else:
            flash(_("Your notification preferences were saved."), "success")
            return redirect(url_for("preferences.my_preferences"))
    return render_template(
        "preferences/mine.html",
        organization=organization,
        rows=overview.rows(user, organization),
        tools=choices.linked_tools(user),
        tool=user.preferred_provider,
        option_labels=choices.OPTION_LABELS,
        errors=errors,
        zone=hours.member_zone(user, organization),
        window=hours.member_window(user, organization),
        zones=COMMON_ZONES,
    ), (422 if errors else 200)


@bp.post("/settings/notification-policy/hours")
@require(Permission.MANAGE_ORGANIZATION)
def company_hours() -> ResponseReturnValue:
    """The company's working hours: outside them non-urgent notifications wait."""
    organization = current_organization()
    form = request.form
    try:
        changed = hours.set_company_hours(
            organization,
            actor=current_user._get_current_object(),
            on=form.get("quiet_hours_on") == "on",
            zone=form.get("time_zone", ""),
            days=form.getlist("work_days"),
            start=form.get("work_start", ""),
            end=form.get("work_end", ""),
            holidays_off=form.get("holidays_off") == "on",
        )
    except hours.HoursError as problem:
        db.session.rollback()
        flash(problem.message, "error")
        return redirect(url_for("me.policy"))
    if changed:
        flash(_("The working hours were saved."), "success")
    return redirect(url_for("me.policy"))


@bp.post("/me/preferences/hours")
@require(Permission.VIEW_OWN_ACCOUNTS)
def my_hours() -> ResponseReturnValue:
    """The member's time zone and narrower hours."""
    user = current_user._get_current_object()
    try:
        changed = hours.set_member_hours(
            user,
            zone=request.form.get("time_zone", "").strip(),
            start=request.form.get("work_start", "").strip(),
            end=request.form.get("work_end", "").strip(),
        )
    except hours.HoursError as problem:
        db.session.rollback()
        flash(problem.message, "error")
        return redirect(url_for("preferences.my_preferences"))
    if changed:
        flash(_("Your time zone and hours were saved."), "success")
    return redirect(url_for("preferences.my_preferences"))
