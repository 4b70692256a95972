"""Database plumbing shared by every model: UTC timestamps and per-dialect connection setup."""

from __future__ import annotations

import enum
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import DateTime, Enum, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from .extensions import db


def utcnow() -> datetime:
    """Now, as an aware UTC datetime: every timestamp in the portal is UTC (DL-12)."""
    return datetime.now(UTC)


def string_enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    """An enum stored as its values in a VARCHAR (no native type: adding a member needs no
    ALTER TYPE on PostgreSQL, and SQLite has none)."""
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware datetime.

    SQLite has no time zones and returns naive values; PostgreSQL stores ``timestamptz``. This
    type hides the difference so comparisons never mix naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Re-entrant: an outcome writer holds it across its whole record (see ``dispatcher.deliver``)
#: and the helpers it calls take it again.
_sqlite_writes = threading.RLock()


def write_section() -> AbstractContextManager[Any]:
    """Hold this around a short write transaction that many threads of one process run.

    SQLite allows one writer; when threads collide, SQLite's busy handler sleeps 5–100 ms
    before retrying, which caps a threaded worker at a few dozen writes a second. Queuing the
    writers on a Python lock instead wakes the next one at once. PostgreSQL needs no such lock.
    """
    return _sqlite_writes if db.engine.dialect.name == "sqlite" else nullcontext()


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session has loaded.

    For a bookkeeping commit in the middle of other work (a send budget's tokens, taken between
    loading a delivery and sending it): the rows the work loaded stay as loaded, instead of each
    being read again, one query apiece, the next time one of its attributes is touched.
    """
    session = db.session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous


def _sqlite_setup(busy_timeout_ms: int) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        _configure_sqlite(dbapi_connection, busy_timeout_ms)

    return configure


def _configure_sqlite(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    # Foreign keys are off by default in SQLite; WAL plus a busy timeout lets the web process
    # and the worker write side by side without "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> None:
    """Bind the SQLAlchemy extension and register connection hooks for SQLite."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri in ("sqlite://", "sqlite:///:memory:"):
        # An in-memory database lives in one connection: no pool to size.
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.pop("pool_size", None)
        options.pop("max_overflow", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite":
            timeout = int(app.config.get("SQLITE_BUSY_TIMEOUT_MS", 10_000))
            event.listen(engine, "connect", _sqlite_setup(timeout))
