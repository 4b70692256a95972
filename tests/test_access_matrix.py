"""PT-10: every route × every role × own/other organization answers exactly as this table says.

A route added to the URL map without a row here fails ``test_every_route_is_in_the_table``, so
nobody can ship a page whose access rules were never written down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db

ROLES = ("anonymous", "member", "admin", "support")
TENANTS = ("own", "other")
LOGIN = 302  # anonymous users are sent to the login page


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {org}: "" or "?org=<slug>" / "&org="; {user}: a member of the tenant under test
    expect: dict[tuple[str, str], int]
    data: dict[str, str] | None = None


def same(**by_role: int) -> dict[tuple[str, str], int]:
    """The same status for both tenants."""
    return {(role, tenant): by_role[role] for role in ROLES for tenant in TENANTS}


def scoped(anonymous: int, member: int, admin: int, support: int) -> dict[tuple[str, str], int]:
    """Organization pages: an admin naming another organization gets 404; support may read any."""
    table = same(anonymous=anonymous, member=member, admin=admin, support=support)
    table[("admin", "other")] = 404 if admin < 400 else admin
    return table


ORG_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=200)

ROUTES: dict[str, list[Case]] = {
    "main.home": [Case("GET", "/", same(anonymous=302, member=302, admin=302, support=302))],
    "main.healthz": [
        Case("GET", "/healthz", same(anonymous=200, member=200, admin=200, support=200))
    ],
    "main.set_language": [
        Case(
            "POST",
            "/language",
            same(anonymous=302, member=302, admin=302, support=302),
            {"locale": "en"},
        )
    ],
    "main.organizations": [
        Case(
            "GET",
            "/support/organizations",
            same(anonymous=LOGIN, member=403, admin=403, support=200),
        )
    ],
    "auth.login": [Case("GET", "/login", same(anonymous=200, member=302, admin=302, support=302))],
    "auth.logout": [
        Case("POST", "/logout", same(anonymous=302, member=302, admin=302, support=302))
    ],
    "integrations.index": [Case("GET", "/settings/integrations{org}", ORG_PAGE)],
    "accounts.members": [Case("GET", "/settings/members{org}", ORG_PAGE)],
    "accounts.deactivate": [
        Case(
            "POST",
            "/settings/members/{user}/deactivate{org}",
            scoped(anonymous=LOGIN, member=403, admin=302, support=403),
        )
    ],
    "audit.index": [
        Case("GET", "/audit{org}", ORG_PAGE),
        Case("GET", "/audit?format=csv{org_amp}", ORG_PAGE),
    ],
    "me.accounts": [
        Case("GET", "/me/accounts", same(anonymous=LOGIN, member=200, admin=200, support=403))
    ],
}


def test_every_route_is_in_the_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints - set(ROUTES) == set(), "routes without access rules in the matrix"
    assert set(ROUTES) - endpoints == set(), "matrix rows for routes that no longer exist"


CASES = [
    pytest.param(
        endpoint, case, role, tenant, id=f"{endpoint}-{case.method}-{index}-{role}-{tenant}"
    )
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
    if role != "anonymous":
        client.login(tenants[role])
    # Admins and members act on their own organization unless told otherwise; support staff
    # always name one. "other" always names the second organization explicitly.
    names_org = tenant == "other" or role == "support"
    org = f"?org={organization.slug}" if names_org else ""
    target = tenants["member"] if tenant == "own" else tenants["other_member"]
    path = case.path.format(
        org=org, org_amp=f"&org={organization.slug}" if names_org else "", user=target.id
    )
    before = db.session.scalar(select(db.func.count()).select_from(AuditEvent))
    if case.method == "GET":
        response = client.get(path)
    else:
        data = dict(case.data or {})
        if role != "anonymous":
            data["csrf_token"] = client.csrf_token()
            response = client.post(path, data=data)
        else:
            response = client.post(path, data=data)
            # Anonymous posts fail CSRF (no session) before anything else: that is a refusal too.
            assert response.status_code in (400, case.expect[(role, tenant)])
            return
    assert response.status_code == case.expect[(role, tenant)], response.text[:500]
    if role == "support" and "{org" in case.path and response.status_code == 200:
        # Every support view of an organization is itself audited.
        db.session.expire_all()
        after = db.session.scalar(select(db.func.count()).select_from(AuditEvent))
        assert after > before
        last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last is not None and last.action == "support.viewed"
        assert last.organization_id == organization.id
