"""PT-10: every route × every role × own/other organization answers exactly as the tables say.

The tables live in ``tests/access_<feature>.py``. A route added to the URL map without a row
fails ``test_every_route_is_in_the_table``, so no page ships without written access rules.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.access import ROLES, TENANTS, Case


def _load_routes() -> dict[str, list[Case]]:
    routes: dict[str, list[Case]] = {}
    for module in sorted(Path(__file__).parent.glob("access_*.py")):
        table = importlib.import_module(f"tests.{module.stem}").ROUTES
        duplicated = set(routes) & set(table)
        assert not duplicated, f"endpoints listed twice: {duplicated}"
        routes.update(table)
    return routes


ROUTES = _load_routes()


def test_every_route_is_in_the_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints - set(ROUTES) == set(), "routes without access rules in the matrix"
    assert set(ROUTES) - endpoints == set(), "matrix rows for routes that no longer exist"


CASES = [
    pytest.param(endpoint, case, role, tenant, id=f"{endpoint}-{index}-{role}-{tenant}")
    for endpoint, cases in ROUTES.items()
    for index, case in enumerate(cases)
    for role in ROLES
    for tenant in TENANTS
]


@pytest.mark.parametrize(("endpoint", "case", "role", "tenant"), CASES)
def test_access(
    client: Any, tenants: dict[str, Any], endpoint: str, case: Case, role: str, tenant: str
) -> None:
    organization = tenants[tenant]
    extra = case.setup(tenants, tenant) if case.setup else {}
    if role != "anonymous":
        client.login(tenants[role])
    # Admins and members act on their own organization unless told otherwise; support staff
    # always name one. "other" always names the second organization explicitly.
    names_org = tenant == "other" or role == "support"
    target = tenants["member"] if tenant == "own" else tenants["other_member"]
    path = case.path.format(
        org=f"?org={organization.slug}" if names_org else "",
        org_amp=f"&org={organization.slug}" if names_org else "",
        user=target.id,
        **extra,
    )
    before = db.session.scalar(select(db.func.count()).select_from(AuditEvent))
    headers = case.headers or {}
    if case.method == "GET":
        response = client.get(path, headers=headers)
    elif role == "anonymous":
        response = client.open(path, method=case.method, data=case.data or {}, headers=headers)
        # Anonymous posts fail CSRF (no session) before anything else: that is a refusal too.
        assert response.status_code in (400, case.expect[(role, tenant)])
        return
    else:
        data = dict(case.data or {}, csrf_token=client.csrf_token())
        response = client.open(path, method=case.method, data=data, headers=headers)
    assert response.status_code == case.expect[(role, tenant)], response.text[:500]
    if role == "support" and "{org" in case.path and response.status_code == 200:
        # Every support view of an organization is itself audited.
        after = db.session.scalar(select(db.func.count()).select_from(AuditEvent))
        assert after > before
        last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last is not None
        assert last.action == "support.viewed"
        assert last.organization_id == organization.id
