"""Which organization a request acts on, and the audit trail of support staff's views.

Admins and members act on their own organization; naming another one answers 404, so
identifiers cannot be probed. Support staff name the organization with ``?org=<slug>`` and each
such view is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, has_request_context, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..audit import service as audit
from ..extensions import db
from .models import Organization, User


class ChooseOrganization(HTTPException):
    """Support staff opened an organization page without naming the organization."""

    code = 303

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        response = Response(status=303)
        response.headers["Location"] = url_for("main.organizations")
        return response


def current_organization() -> Organization:
    """Return the organization of this request, resolving and auditing it once per request."""
    if "organization" in g:
        return g.organization  # type: ignore[no-any-return]
    requested = request.args.get("org", type=str)
    if current_user.is_support:
        if not requested:
            raise ChooseOrganization()
        organization = db.session.scalar(select(Organization).filter_by(slug=requested))
        if organization is None:
            abort(404)
        _audit_support_view(organization)
    else:
        organization = current_user.organization
        if organization is None or (requested and requested != organization.slug):
            abort(404)
    g.organization = organization
    return organization


def member_or_404(user_id: int) -> User:
    """A member of the current organization; another organization's member answers 404 (the
    same answer as a missing one, so member ids cannot be probed across companies)."""
    user = db.session.scalar(
        select(User).where(User.id == user_id, User.organization_id == current_organization().id)
    )
    if user is None:
        abort(404)
    return user


def org_args() -> dict[str, str]:
    """URL arguments that keep support staff inside the organization they are viewing."""
    if not has_request_context() or current_user is None:  # e-mails rendered by the worker
        return {}
    if current_user.is_authenticated and current_user.is_support and "organization" in g:
        return {"org": g.organization.slug}
    return {}


def _audit_support_view(organization: Organization) -> None:
    audit.record(
        "support.viewed",
        organization=organization,
        target=("page", request.path, request.path),
        data={"query": request.query_string.decode("utf-8", "replace")[:500]},
    )
    db.session.commit()
