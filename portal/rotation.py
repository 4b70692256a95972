"""``flask rotate-keys``: re-encrypt stored secrets under the newest key, in batches.

Each batch commits on its own and each value is rewritten only if its key id is not the primary
one, so a run killed at any point can simply be started again: nothing is lost, nothing is
encrypted twice (reliability.md SE-05). A value no key can read marks its integration
"reconnect required" instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update

from .crypto import PREFIX, SecretUnavailable, StoredSecret, iter_encrypted_columns, keyring
from .extensions import db


@dataclass
class RotationCounts:
    rotated: int = 0
    current: int = 0
    unreadable: int = 0


def rotate_all(
    batch_size: int = 500, progress: Callable[[str], None] | None = None
) -> RotationCounts:
    counts = RotationCounts()
    ring = keyring()
    current_prefix = f"{PREFIX}{ring.primary_id}:"
    for model, attribute in iter_encrypted_columns():
        table = model.__table__
        column = table.c[attribute]
        key_columns = list(table.primary_key.columns)
        pk = key_columns[0]
        last = None
        while True:
            # Read raw stored strings (not decrypted objects) by primary key order.
            stmt = (
                select(pk, column.cast(db.Text))
                .where(column.is_not(None))
                .order_by(pk)
                .limit(batch_size)
            )
            if last is not None:
                stmt = stmt.where(pk > last)
            rows = db.session.execute(stmt).all()
            if not rows:
                break
            for key, stored in rows:
                last = key
                if stored.startswith(current_prefix):
                    counts.current += 1
                    continue
                try:
                    fresh = ring.rotate(stored)
                except SecretUnavailable:
                    counts.unreadable += 1
                    _mark_unreadable(model, key)
                    continue
                # Compare-and-swap: a concurrent writer's newer value is never overwritten.
                db.session.execute(
                    update(table)
                    .where(pk == key, column.cast(db.Text) == stored)
                    .values({attribute: StoredSecret(fresh)})
                )
                counts.rotated += 1
            db.session.commit()
            if progress:
                progress(f"{model.__tablename__}.{attribute}: up to id {last}")
    return counts


def _mark_unreadable(model: type, key: object) -> None:
    from .integrations import health
    from .integrations.models import Integration

    if model is Integration:
        integration = db.session.get(Integration, key)
        if integration is not None:
            health.mark_needs_reconnect(integration, "secret_unreadable")
