"""外部ツールの連携: one card per chat tool with its state."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from ...accounts.models import User
from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...extensions import db
from ...notifications import delivery_health
from ...support import coverage
from ...support import services as support_services
from .. import bp
from ..models import AccountLink, Integration
from ..registry import providers
from ..services import LIVE_STATES


@bp.get("/settings/integrations")
@require(Permission.VIEW_ORGANIZATION)
def index() -> str:
    """The provider cards: state, who connected it and when, and how many members are linked;
    below them, the last 7 days of deliveries per chat tool."""
    organization = current_organization()
    integrations = {
        i.provider: i
        for i in db.session.scalars(
            select(Integration).where(Integration.organization_id == organization.id)
        )
    }
    linked = dict(
        db.session.execute(
            select(AccountLink.integration_id, func.count())
            .where(AccountLink.organization_id == organization.id)
            .group_by(AccountLink.integration_id)
        )
        .tuples()
        .all()
    )
    member_count = db.session.scalar(
        select(func.count()).select_from(User).where(User.organization_id == organization.id)
    )
    connectors = {
        u.id: u
        for u in db.session.scalars(
            select(User).where(
                User.id.in_([i.connected_by_id for i in integrations.values() if i.connected_by_id])
            )
        )
    }
    live = [i for i in integrations.values() if i.state in LIVE_STATES]
    return render_template(
        "integrations/index.html",
        coverage={i.provider: coverage.compute(i) for i in live},
        warnings={i.provider: support_services.integration_warnings(i) for i in live},
        reasons=coverage.all_reasons(),
        organization=organization,
        catalog=list(providers.all()),
        integrations=integrations,
        linked=linked,
        member_count=member_count or 0,
        connectors=connectors,
        delivery_health=delivery_health.for_organization(organization),
    )
