"""Demo data for ``make run``: two organizations, an admin each, members and a support user.

Idempotent: running it twice changes nothing. Refused under the production configuration.
"""

from __future__ import annotations

import os

from sqlalchemy import select
from werkzeug.security import generate_password_hash

import demodata

from .accounts import services
from .accounts.models import Organization, User
from .accounts.permissions import Role
from .extensions import db

DEFAULT_PASSWORD = "demo-pass-1234"  # noqa: S105 - demo data, refused in production
SUPPORT_EMAIL = "support@chat-connect.example"


def _password() -> str:
    return os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD


def _organization(slug: str, name: str) -> Organization:
    existing = db.session.scalar(select(Organization).filter_by(slug=slug))
    return existing or services.create_organization(slug, name)


def load() -> list[tuple[str, str]]:
    """Create whatever of the demo data is missing; return the demo logins (e-mail, role)."""
    # One hash for every demo account: hashing 50 passwords would make `make run` slow.
    password_hash = generate_password_hash(_password())
    existing = set(db.session.scalars(select(User.email)))

    def user(email: str, name: str, role: Role, organization: Organization | None) -> None:
        if email not in existing:
            services.create_user(
                email=email,
                name=name,
                role=role,
                organization=organization,
                password_hash=password_hash,
            )

    demo = _organization("demo", "デモ株式会社")
    user("admin@demo.example", "管理 太郎", Role.ADMIN, demo)
    for person in demodata.members(demodata.DEMO_MEMBER_COUNT, "demo.example"):
        user(person.email, person.name, Role.MEMBER, demo)

    sample = _organization("sample", "サンプル商事")
    user("admin@sample.example", "見本 花子", Role.ADMIN, sample)
    for person in demodata.members(demodata.SAMPLE_MEMBER_COUNT, "sample.example"):
        user(person.email, person.name, Role.MEMBER, sample)

    user(SUPPORT_EMAIL, "サポート 担当", Role.SUPPORT, None)
    db.session.commit()
    return [
        ("admin@demo.example", "admin (デモ株式会社)"),
        ("member01@demo.example", "member (デモ株式会社)"),
        ("admin@sample.example", "admin (サンプル商事)"),
        (SUPPORT_EMAIL, "support"),
    ]
