"""The audit log: registry, scrubbing, append-only in the database, filters, paging, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask_babel import force_locale, format_datetime, gettext
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from portal.audit import service as audit
from portal.audit.events import ACTIONS, register
from portal.audit.models import AuditEvent
from portal.extensions import db


def test_actions_are_registered_once_with_known_kinds() -> None:
    with pytest.raises(ValueError, match="twice"):
        register("user.logged_in", "other", "x")  # type: ignore[arg-type]
    assert all(
        action.kind in ("positive", "change", "negative", "other") for action in ACTIONS.values()
    )
    with pytest.raises(KeyError):
        audit.record("not.registered")


def test_record_scrubs_secrets_at_any_depth(app: Any, tenants: dict[str, Any]) -> None:
    event = audit.record(
        "integration.updated",
        organization=tenants["own"],
        before={"client_secret": "s3cr3t", "nested": [{"access_token": "xoxb-1"}], "name": "ok"},
        after={"config": {"refresh_token": "xoxe-1", "channel": "#general"}},
    )
    db.session.commit()
    stored = db.session.get(AuditEvent, event.id)
    assert stored is not None
    assert "s3cr3t" not in str(stored.before) and "xoxb-1" not in str(stored.before)
    assert stored.before["name"] == "ok"
    assert stored.after == {"config": {"refresh_token": "[redacted]", "channel": "#general"}}


def test_audit_log_is_append_only_in_the_database(app: Any, tenants: dict[str, Any]) -> None:
    audit.record("organization.created", organization=tenants["own"])
    db.session.commit()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(AuditEvent)) == 1


def test_admin_sees_only_own_organization(client: Any, tenants: dict[str, Any]) -> None:
    audit.record(
        "organization.created", organization=tenants["own"], target=("organization", 1, "OWN-ORG")
    )
    audit.record(
        "organization.created",
        organization=tenants["other"],
        target=("organization", 2, "OTHER-ORG"),
    )
    db.session.commit()
    client.login(tenants["admin"])
    page = client.get("/audit").text
    assert "OWN-ORG" in page and "OTHER-ORG" not in page
    csv_text = client.get("/audit?format=csv").get_data(as_text=True)
    assert "OWN-ORG" in csv_text and "OTHER-ORG" not in csv_text


def test_support_reads_across_organizations(client: Any, tenants: dict[str, Any]) -> None:
    audit.record(
        "organization.created", organization=tenants["own"], target=("organization", 1, "OWN-ORG")
    )
    audit.record(
        "organization.created",
        organization=tenants["other"],
        target=("organization", 2, "OTHER-ORG"),
    )
    db.session.commit()
    client.login(tenants["support"])
    page = client.get("/audit").text
    assert "OWN-ORG" in page and "OTHER-ORG" in page
    scoped = client.get("/audit?org=sample").text
    assert "OWN-ORG" not in scoped and "OTHER-ORG" in scoped


def test_filters_and_keyset_paging(client: Any, tenants: dict[str, Any]) -> None:
    for n in range(120):
        audit.record(
            "organization.created",
            organization=tenants["own"],
            target=("organization", n, f"T{n:03d}"),
        )
    db.session.commit()
    client.login(tenants["admin"])
    first = client.get("/audit?action=organization.created")
    assert "T119" in first.text and "T069" not in first.text
    cursor = first.text.split("before=")[1].split("&")[0].split('"')[0]
    second = client.get(
        f"/audit?action=organization.created&before={cursor}", headers={"HX-Request": "true"}
    )
    assert second.text.lstrip().startswith('<section id="audit-entries">')
    assert "T069" in second.text and "T119" not in second.text
    only_logins = client.get("/audit?action=user.logged_in").text
    assert "T119" not in only_logins
    assert client.get("/audit?actor=admin@demo&action=user.logged_in").status_code == 200


def test_csv_export_has_every_column_and_defuses_formulas(
    client: Any, tenants: dict[str, Any]
) -> None:
    audit.record(
        "organization.created",
        organization=tenants["own"],
        target=("organization", 1, "=HYPERLINK(1)"),
    )
    db.session.commit()
    client.login(tenants["admin"])
    response = client.get("/audit?format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:5] == ["id", "occurred_at", "organization", "actor", "action"]
    labels = [row[8] for row in rows[1:]]
    assert "'=HYPERLINK(1)" in labels


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_rows_and_filter_read_as_built_one_at_a_time(
    app: Any, client: Any, tenants: dict[str, Any], locale: str
) -> None:
    """The page translates each action's label and finds the locale and time zone once; every
    row must still show what ``|datetimeformat('short')`` and the action's own label give."""
    audit.record("organization.created", organization=tenants["own"])
    audit.record("user.logged_in", organization=tenants["own"], actor=tenants["admin"])
    db.session.commit()
    client.login(tenants["admin"])
    client.post_form("/language", {"locale": locale, "next": "/audit"})
    page = client.get("/audit").text
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.organization_id == tenants["own"].id)
    ).all()
    with app.test_request_context(), force_locale(locale):
        for event in events:
            assert f"<td>{format_datetime(event.occurred_at, 'short')}</td>" in page
            assert f"<td>{ACTIONS[event.action].summary}<br><code>{event.action}</code>" in page
        for key in ("organization.created", "user.logged_in", "user.logged_out"):
            assert f'<option value="{key}">{ACTIONS[key].summary} ({key})</option>' in page
        assert f"<td>{gettext('System')}</td>" in page  # organization.created had no actor
