"""Roles, permissions and the single map between them.

Views declare the permission they need (``@require(Permission.X)``); templates ask
``current_user.can(Permission.X)``. Nothing else looks at a role.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user

from ..extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    SUPPORT = "support"


class Permission(enum.StrEnum):
    #: Read an organization's integrations, members, links and deliveries.
    VIEW_ORGANIZATION = "view_organization"
    #: Connect, configure and disconnect integrations; link and unlink members.
    MANAGE_INTEGRATIONS = "manage_integrations"
    #: Create and revoke API keys, deactivate users.
    MANAGE_ORGANIZATION = "manage_organization"
    VIEW_AUDIT_LOG = "view_audit_log"
    #: Read any organization (vendor support staff); every such view is itself audited.
    VIEW_ANY_ORGANIZATION = "view_any_organization"
    #: See one's own connected accounts and deliveries.
    VIEW_OWN_ACCOUNTS = "view_own_accounts"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.VIEW_ORGANIZATION,
            Permission.MANAGE_INTEGRATIONS,
            Permission.MANAGE_ORGANIZATION,
            Permission.VIEW_AUDIT_LOG,
            Permission.VIEW_OWN_ACCOUNTS,
        }
    ),
    Role.MEMBER: frozenset({Permission.VIEW_OWN_ACCOUNTS}),
    Role.SUPPORT: frozenset(
        {
            Permission.VIEW_ORGANIZATION,
            Permission.VIEW_AUDIT_LOG,
            Permission.VIEW_ANY_ORGANIZATION,
        }
    ),
}


def require(permission: Permission) -> Callable[[F], F]:
    """Decorate a view: sign-in required, then ``permission``; 403 otherwise.

    Anonymous users are sent to the login page (Flask-Login's ``unauthorized``), so the
    decorator also replaces ``login_required``.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
