"""The organization's member list (search, HTMX paging) and deactivation."""

from __future__ import annotations

from collections import defaultdict

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from ..extensions import db
from ..htmx import render_page_or_partial
from ..integrations.models import AccountLink, Integration
from ..paging import contains_ci, page_number, search_text
from . import bp, services
from .models import User
from .permissions import Permission, require
from .tenancy import current_organization, member_or_404


@bp.get("/settings/members")
@require(Permission.VIEW_ORGANIZATION)
def members() -> str:
    """Members of the organization, searchable by name or e-mail, paged."""
    organization = current_organization()
    query = search_text()
    page = page_number()
    per_page = current_app.config["MEMBERS_PER_PAGE"]
    stmt = select(User).where(User.organization_id == organization.id)
    if query:
        stmt = stmt.where(or_(contains_ci(User.name, query), contains_ci(User.email, query)))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    # Page through ids first (answered from the index alone), then load just those rows: deep
    # pages such as 150 of 200 stay as cheap as the first one.
    ids = (
        stmt.with_only_columns(User.id)
        .order_by(User.name, User.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    users = db.session.scalars(
        select(User).where(User.id.in_(ids.scalar_subquery())).order_by(User.name, User.id)
    ).all()
    providers: dict[int, list[str]] = defaultdict(list)
    if users:
        rows = db.session.execute(
            select(AccountLink.user_id, Integration.provider)
            .join(Integration, Integration.id == AccountLink.integration_id)
            .where(
                AccountLink.organization_id == organization.id,
                AccountLink.user_id.in_([u.id for u in users]),
            )
        )
        for user_id, provider in rows:
            providers[user_id].append(provider)
    pages = max(1, -(-total // per_page))
    return render_page_or_partial(
        "accounts/members.html",
        "accounts/_member_table.html",
        organization=organization,
        users=users,
        providers=providers,
        query=query,
        page=page,
        pages=pages,
        total=total,
    )


@bp.post("/settings/members/<int:user_id>/deactivate")
@require(Permission.MANAGE_ORGANIZATION)
def deactivate(user_id: int) -> Response:
    """Deactivate a member: their sessions end immediately."""
    user = member_or_404(user_id)
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."), "error")
    elif user.is_active:
        services.deactivate_user(user)
        flash(_("%(name)s was deactivated and signed out.", name=user.name), "success")
    return redirect(url_for("accounts.members", q=request.args.get("q", "")))
