"""Queue reachability for /healthz: the huey storage the worker reads from."""

from __future__ import annotations

from typing import Any

from flask import Flask


def queue_status(app: Flask) -> dict[str, Any]:
    """Ping the queue backend configured for the worker (Redis or the SQLite file)."""
    redis_url = app.config.get("REDIS_URL")
    try:
        if redis_url:
            import redis

            redis.Redis.from_url(redis_url, socket_timeout=1).ping()
            return {"ok": True, "backend": "redis"}
        import sqlite3

        with sqlite3.connect(app.config["HUEY_SQLITE_PATH"], timeout=1) as connection:
            connection.execute("SELECT 1")
        return {"ok": True, "backend": "sqlite"}
    except Exception as exc:
        return {
            "ok": False,
            "backend": "redis" if redis_url else "sqlite",
            "error": type(exc).__name__,
        }
