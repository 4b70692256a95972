"""Delivery log (``/deliveries``), replay, test messages and API-key settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, or_, select
from werkzeug.wrappers import Response

from ..accounts.models import Organization, User
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization, member_or_404, org_args
from ..extensions import db
from ..htmx import render_page_or_partial
from ..paging import contains_ci, positive_id, search_text
from . import api_keys, bp, services, stuck
from .backoff import MAX_ATTEMPTS
from .explain import STATE_LABELS, explain_error, explain_reason
from .forms import ApiKeyForm
from .models import ApiKey, Delivery, DeliveryState, Notification
from .transports import transports

PER_PAGE = 50


def _day(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, description=_("Dates must look like 2026-11-26."))


def _filtered(
    organization: Organization,
) -> tuple[Select[tuple[Delivery, Notification, User]], dict[str, str]]:
    stmt = (
        select(Delivery, Notification, User)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(User, User.id == Notification.recipient_id)
        .where(Delivery.organization_id == organization.id)
    )
    filters = {
        "member": search_text("member", 254),
        "channel": request.args.get("channel", ""),
        "state": request.args.get("state", ""),
    }
    if filters["member"]:
        stmt = stmt.where(
            or_(
                contains_ci(User.name, filters["member"]),
                contains_ci(User.email, filters["member"]),
            )
        )
    if filters["channel"]:
        if filters["channel"] not in transports:
            abort(400, description=_("Unknown channel."))
        stmt = stmt.where(Delivery.channel == filters["channel"])
    if filters["state"]:
        if filters["state"] not in {s.value for s in DeliveryState}:
            abort(400, description=_("Unknown state."))
        stmt = stmt.where(Delivery.state == DeliveryState(filters["state"]))
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    if start := _day("from"):
        stmt = stmt.where(
            Delivery.created_at >= datetime.combine(start, time(), zone).astimezone(UTC)
        )
        filters["from"] = start.isoformat()
    if end := _day("to"):
        stmt = stmt.where(
            Delivery.created_at
            < datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
        )
        filters["to"] = end.isoformat()
    return stmt, filters


@bp.get("/deliveries")
@require(Permission.VIEW_ORGANIZATION)
def deliveries() -> str:
    """Every delivery of the organization, newest first, with its state and reason."""
    organization = current_organization()
    stmt, filters = _filtered(organization)
    if before := positive_id("before"):
        stmt = stmt.where(Delivery.id < before)
    rows = db.session.execute(stmt.order_by(Delivery.id.desc()).limit(PER_PAGE + 1)).tuples().all()
    has_more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    return render_page_or_partial(
        "notifications/deliveries.html",
        "notifications/_delivery_rows.html",
        organization=organization,
        rows=rows,
        filters=filters,
        link_args={**filters, **org_args()},
        next_before=rows[-1][0].id if has_more and rows else None,
        channels=transports.keys(),
        states=[s.value for s in DeliveryState],
        state_labels=STATE_LABELS,
        explain_error=explain_error,
        explain_reason=explain_reason,
        stuck=stuck.summary(organization.id),
        max_attempts=MAX_ATTEMPTS,
    )


def _delivery_or_404(delivery_id: int, organization: Organization) -> Delivery:
    delivery = db.session.scalar(
        select(Delivery).where(
            Delivery.id == delivery_id, Delivery.organization_id == organization.id
        )
    )
    if delivery is None:
        abort(404)
    return delivery


@bp.post("/deliveries/<int:delivery_id>/replay")
@require(Permission.MANAGE_INTEGRATIONS)
def replay(delivery_id: int) -> Response:
    """Send a dead or failed delivery again (same row: nothing already sent repeats)."""
    delivery = _delivery_or_404(delivery_id, current_organization())
    try:
        services.replay(delivery, actor=current_user._get_current_object())
        flash(_("The delivery was queued again."), "success")
    except ValueError:
        flash(_("Only failed deliveries can be sent again."), "error")
    return redirect(url_for("notifications.deliveries"))


@bp.post("/settings/members/<int:user_id>/test-message")
@require(Permission.MANAGE_INTEGRATIONS)
def test_message(user_id: int) -> Response:
    """Send this member a test notification through the real pipeline."""
    member = member_or_404(user_id)
    notification = services.send_test_message(member, actor=current_user._get_current_object())
    channel = notification.deliveries[0].channel
    flash(
        _(
            "A test message to %(name)s was queued (%(channel)s).",
            name=member.name,
            channel=channel,
        ),
        "success",
    )
    return redirect(
        request.referrer
        if request.referrer and request.referrer.startswith(request.host_url)
        else url_for("accounts.members")
    )


@bp.route("/settings/api-keys", methods=["GET", "POST"])
@require(Permission.MANAGE_ORGANIZATION)
def api_key_list() -> str | tuple[str, int]:
    """The organization's API keys (prefix only); a new key is shown once, right after creation."""
    organization = current_organization()
    form = ApiKeyForm()
    new_key = None
    if form.validate_on_submit():
        _row, new_key = api_keys.create(
            organization, form.name.data or "", actor=current_user._get_current_object()
        )
        form = ApiKeyForm(formdata=None)
    keys = db.session.scalars(
        select(ApiKey).where(ApiKey.organization_id == organization.id).order_by(ApiKey.id.desc())
    ).all()
    status = 422 if request.method == "POST" and new_key is None else 200
    return render_template(
        "notifications/api_keys.html", form=form, keys=keys, new_key=new_key
    ), status


@bp.post("/settings/api-keys/<int:key_id>/revoke")
@require(Permission.MANAGE_ORGANIZATION)
def api_key_revoke(key_id: int) -> Response:
    organization = current_organization()
    row = db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == organization.id)
    )
    if row is None:
        abort(404)
    api_keys.revoke(row, actor=current_user._get_current_object())
    flash(_("The API key %(prefix)s… was revoked.", prefix=row.prefix), "success")
    return redirect(url_for("notifications.api_key_list"))
