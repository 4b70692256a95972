"""``/audit``: filters, keyset paging and CSV export."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, request, stream_with_context
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, select

from ..accounts.models import Organization
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization, org_args
from ..extensions import db
from ..htmx import render_page_or_partial
from ..paging import contains_ci, positive_id, search_text
from . import bp
from .events import ACTIONS
from .models import AuditEvent

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "organization",
    "actor",
    "action",
    "kind",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "ip",
    "request_id",
)


def _day(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, description=_("Dates must look like 2026-11-26."))


def _filtered() -> tuple[Select[tuple[AuditEvent]], Organization | None, dict[str, str]]:
    """The audit query with this request's filters, scoped to what the user may see."""
    organization: Organization | None
    if current_user.can(Permission.VIEW_ANY_ORGANIZATION) and not request.args.get("org"):
        organization = None  # support staff may read across organizations
    else:
        organization = current_organization()
    stmt = select(AuditEvent)
    if organization is not None:
        stmt = stmt.where(AuditEvent.organization_id == organization.id)
    filters = {"actor": search_text("actor", 254), "action": request.args.get("action", "")}
    if filters["actor"]:
        stmt = stmt.where(contains_ci(AuditEvent.actor_label, filters["actor"]))
    if filters["action"]:
        if filters["action"] not in ACTIONS:
            abort(400, description=_("Unknown action."))
        stmt = stmt.where(AuditEvent.action == filters["action"])
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    start, end = _day("from"), _day("to")
    if start:
        stmt = stmt.where(
            AuditEvent.occurred_at >= datetime.combine(start, time(), zone).astimezone(UTC)
        )
        filters["from"] = start.isoformat()
    if end:
        stmt = stmt.where(
            AuditEvent.occurred_at
            < datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
        )
        filters["to"] = end.isoformat()
    return stmt, organization, filters


@bp.get("/audit")
@require(Permission.VIEW_AUDIT_LOG)
def index() -> str | Response:
    """The log, newest first, fifty at a time (keyset paging on the id)."""
    stmt, organization, filters = _filtered()
    if request.args.get("format") == "csv":
        return _csv(stmt)
    before = positive_id("before")
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    per_page = current_app.config["AUDIT_PER_PAGE"]
    events = db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(per_page + 1)).all()
    has_more = len(events) > per_page
    events = events[:per_page]
    names = _organization_names({e.organization_id for e in events})
    return render_page_or_partial(
        "audit/index.html",
        "audit/_entries.html",
        events=events,
        next_before=events[-1].id if has_more and events else None,
        organization=organization,
        organization_names=names,
        filters=filters,
        link_args={**filters, **org_args()},
        labels=_action_labels(str(get_locale()), len(ACTIONS)),
    )


@functools.cache
def _action_labels(locale: str, count: int) -> dict[str, str]:
    """Every action's label in ``locale`` (the current one), in the order the filter lists them.

    The filter lists all of them on every page and each row names one: translated per use,
    that was a quarter of the page's rendering. The catalogs do not change while the process
    runs; ``count`` makes an action registered later a new entry.
    """
    return {key: str(ACTIONS[key].summary) for key in sorted(ACTIONS)}


def _organization_names(ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(
        db.session.execute(
            select(Organization.id, Organization.name).where(Organization.id.in_(wanted))
        )
        .tuples()
        .all()
    )


def _cell(value: object) -> str:
    text = (
        ""
        if value is None
        else (json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value))
    )
    # Spreadsheets run cells that start with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(stmt: Select[tuple[AuditEvent]]) -> Response:
    names = dict(db.session.execute(select(Organization.id, Organization.slug)).tuples().all())

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # Excel opens UTF-8 CSV correctly only with a BOM
        writer.writerow(CSV_COLUMNS)
        for event in db.session.scalars(
            stmt.order_by(AuditEvent.id.desc()).execution_options(yield_per=1000)
        ):
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        event.id,
                        event.occurred_at.isoformat(),
                        names.get(event.organization_id or 0),
                        event.actor_label,
                        event.action,
                        event.kind,
                        event.target_type,
                        event.target_id,
                        event.target_label,
                        event.before,
                        event.after,
                        event.ip,
                        event.request_id,
                    )
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=audit.csv"
    return response
