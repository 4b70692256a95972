"""Organization API keys: created (shown once), listed by prefix, revoked; only hashes stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from .models import ApiKey

PREFIX = "cc_live_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(organization: Organization, name: str, *, actor: User | None) -> tuple[ApiKey, str]:
    """Create a key; return the row and the key itself, which is never retrievable again."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        organization_id=organization.id,
        name=name.strip()[:100] or "API key",
        prefix=key[: len(PREFIX) + 6],
        key_hash=_hash(key),
        created_by_id=actor.id if actor else None,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "api_key.created",
        organization=organization,
        actor=actor,
        target=("api_key", row.id, row.prefix),
        after={"name": row.name, "prefix": row.prefix},
    )
    db.session.commit()
    return row, key


def revoke(row: ApiKey, *, actor: User) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            "api_key.revoked",
            organization=db.session.get(Organization, row.organization_id),
            actor=actor,
            target=("api_key", row.id, row.prefix),
            before={"revoked": False},
            after={"revoked": True},
        )
        db.session.commit()


def authenticate(key: str) -> ApiKey | None:
    """The key's row, whether revoked or not (the caller tells the two apart)."""
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    return db.session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key)))
