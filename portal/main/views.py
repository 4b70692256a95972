"""Small views that belong to no feature."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select, text
from werkzeug.wrappers import Response

from ..accounts import services
from ..accounts.models import Organization, User
from ..accounts.permissions import Permission, require
from ..auth.views import _safe_next
from ..extensions import db
from ..paging import contains_ci, page_number, search_text
from . import bp
from .health import queue_status


@bp.get("/")
def home() -> Response:
    """Send each role to its starting page."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.can(Permission.VIEW_ANY_ORGANIZATION):
        return redirect(url_for("main.organizations"))
    if current_user.can(Permission.MANAGE_INTEGRATIONS):
        return redirect(url_for("integrations.index"))
    return redirect(url_for("me.accounts"))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Database and queue reachability, as JSON, for load balancers and humans."""
    checks: dict[str, Any] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:
        db.session.rollback()
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    checks["queue"] = queue_status(current_app)
    ok = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503


@bp.post("/language")
def set_language() -> Response:
    """Switch the interface language; remembered on the user, or in the session before sign-in."""
    locale = request.form.get("locale", "")
    if locale in current_app.config["LANGUAGES"]:
        if current_user.is_authenticated:
            services.change_locale(current_user._get_current_object(), locale)
        else:
            session["locale"] = locale
    return redirect(_safe_next(request.form.get("next")))


@bp.get("/support/organizations")
@require(Permission.VIEW_ANY_ORGANIZATION)
def organizations() -> str:
    """Support staff pick the organization to look at (search by name or slug)."""
    query = search_text()
    stmt = select(Organization).order_by(Organization.name)
    if query:
        stmt = stmt.where(
            or_(contains_ci(Organization.name, query), contains_ci(Organization.slug, query))
        )
    page = page_number()
    rows = db.session.scalars(stmt.limit(51).offset((page - 1) * 50)).all()
    counts = dict(
        db.session.execute(
            select(User.organization_id, func.count())
            .where(User.organization_id.in_([o.id for o in rows]))
            .group_by(User.organization_id)
        )
        .tuples()
        .all()
    )
    return render_template(
        "main/organizations.html",
        organizations=rows[:50],
        has_next=len(rows) > 50,
        page=page,
        query=query,
        counts=counts,
    )
