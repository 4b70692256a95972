"""Creating, changing and deactivating users. Each change is audited in its own transaction."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from ..audit import service as audit
from ..auth import sessions
from ..database import utcnow
from ..extensions import db
from ..preferences import categories
from .models import Organization, User
from .permissions import Role


class UserError(ValueError):
    """A user could not be created or changed as asked; the message is for the admin."""


def create_organization(slug: str, name: str) -> Organization:
    organization = Organization(slug=slug.strip().lower(), name=name.strip())
    db.session.add(organization)
    db.session.flush()
    categories.ensure_defaults(organization)
    audit.record(
        "organization.created",
        organization=organization,
        target=("organization", organization.id, organization.name),
        after={"slug": organization.slug, "name": organization.name},
    )
    return organization


def create_user(
    *,
    email: str,
    name: str,
    role: Role,
    organization: Organization | None,
    password: str | None = None,
    password_hash: str | None = None,
) -> User:
    """Add a user (the caller commits). Support users have no organization; others must."""
    email = email.strip().lower()
    if (role is Role.SUPPORT) != (organization is None):
        raise UserError("support users belong to no organization; others belong to one")
    if db.session.scalar(select(User.id).filter_by(email=email)) is not None:
        raise UserError(f"a user with e-mail {email} already exists")
    user = User(
        email=email,
        name=name.strip()[:200],
        role=role,
        organization_id=organization.id if organization else None,
        password_hash=password_hash or (generate_password_hash(password) if password else None),
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created",
        organization=organization,
        target=("user", user.id, user.email),
        after={"email": user.email, "name": user.name, "role": user.role.value},
    )
    return user


def deactivate_user(user: User) -> None:
    """Deactivate ``user`` and end every session they have, at once (PT-03)."""
    user.is_active_flag = False
    user.deactivated_at = utcnow()
    sessions.end_all(user)
    audit.record(
        "user.deactivated",
        organization=user.organization,
        target=("user", user.id, user.email),
        before={"active": True},
        after={"active": False},
    )
    db.session.commit()


def change_locale(user: User, locale: str) -> None:
    before = user.locale
    user.locale = locale
    audit.record(
        "user.locale_changed",
        organization=user.organization,
        target=("user", user.id, user.email),
        before={"locale": before},
        after={"locale": locale},
    )
    db.session.commit()
