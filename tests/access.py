"""Building blocks of the route × role × tenant matrix (tests/test_access_matrix.py).

Each feature keeps its rows in a ``tests/access_<feature>.py`` module exposing ``ROUTES``:
``{endpoint: [Case, …]}``. A path may use ``{org}`` ("" or "?org=<slug>"), ``{org_amp}``
("" or "&org=<slug>"), ``{user}`` (a member of the tenant under test) and any key returned by
the case's ``setup(tenants, tenant)`` function, which creates the objects the route needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ROLES = ("anonymous", "member", "admin", "support")
TENANTS = ("own", "other")
LOGIN = 302  # anonymous users are sent to the login page


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expect: dict[tuple[str, str], int]
    data: dict[str, str] | None = None
    setup: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    headers: dict[str, str] | None = None


def same(**by_role: int) -> dict[tuple[str, str], int]:
    """The same status for both tenants."""
    return {(role, tenant): by_role[role] for role in ROLES for tenant in TENANTS}


def scoped(anonymous: int, member: int, admin: int, support: int) -> dict[tuple[str, str], int]:
    """Organization pages: an admin naming another organization gets 404; support may read any."""
    table = same(anonymous=anonymous, member=member, admin=admin, support=support)
    table[("admin", "other")] = 404 if admin < 400 else admin
    return table


#: A page of an organization that admins and support staff may read.
ORG_PAGE = scoped(anonymous=LOGIN, member=403, admin=200, support=200)
#: A change to an organization: admins of that organization only (support is read-only).
ORG_CHANGE = scoped(anonymous=LOGIN, member=403, admin=302, support=403)
