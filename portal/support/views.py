"""Support console pages. Read-only; organization pages go through ``current_organization``,
which writes a ``support.viewed`` audit event for each of them."""

from __future__ import annotations

from flask import abort, render_template, request
from sqlalchemy import select

from ..accounts.models import Organization
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization, member_or_404
from ..audit.events import ACTIONS
from ..converters import parse_id
from ..extensions import db
from ..me import services as member_services
from ..notifications import delivery_health, stuck
from ..notifications.backoff import MAX_ATTEMPTS
from ..notifications.explain import STATE_LABELS, explain_error
from ..preferences import choices, hours, overview
from . import bp, services


@bp.get("/support")
@require(Permission.VIEW_ANY_ORGANIZATION)
def index() -> str:
    """Search any organization's member by e-mail or name; the organizations' health links."""
    query = request.args.get("q", "", type=str).strip()[:200]
    results = services.search_members(query) if query else []
    organizations = db.session.scalars(select(Organization).order_by(Organization.slug)).all()
    return render_template(
        "support/index.html", query=query, results=results, organizations=organizations
    )


@bp.get("/support/members/<int:user_id>")
@require(Permission.VIEW_ANY_ORGANIZATION)
def member(user_id: int) -> str:
    """One member: links, link history, recent deliveries, and "why didn't they get it?"."""
    organization = current_organization()
    user = member_or_404(user_id)
    raw = request.args.get("notification")
    chosen = parse_id(raw)
    notification = services.notification_or_none(organization, user, chosen) if chosen else None
    if raw and notification is None:
        abort(404)
    return render_template(
        "support/member.html",
        organization=organization,
        member=user,
        links=member_services.own_links(user),
        history=services.link_history(organization, user),
        deliveries=services.recent_deliveries(organization, user),
        notification=notification,
        why=services.why_not(organization, user, notification) if notification else [],
        routes=overview.rows(user, organization),
        zone=hours.member_zone(user, organization),
        option_labels=choices.OPTION_LABELS,
        state_labels=STATE_LABELS,
        audit_label=lambda key: ACTIONS[key].summary if key in ACTIONS else key,
    )


@bp.get("/support/health")
@require(Permission.VIEW_ANY_ORGANIZATION)
def health() -> str:
    """Integration health of one organization: state, last send, token expiry, last error,
    and its deliveries per hour and outcome over the last 7 days."""
    organization = current_organization()
    return render_template(
        "support/health.html",
        organization=organization,
        rows=services.health(organization),
        stuck=stuck.summary(organization.id),
        max_attempts=MAX_ATTEMPTS,
        explain_error=explain_error,
        delivery_health=delivery_health.for_organization(organization),
    )
