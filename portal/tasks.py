"""Background jobs on huey: delivery wake-ups, the periodic sweep, directory syncs.

huey is only the runner. The database stays the record of what must happen (the Delivery
outbox, a sync's progress row), because huey drops a task that is running when its consumer is
killed; a lost wake-up therefore costs one sweep interval, never a notification.

Storage: ``SqliteHuey`` (a file under instance/) by default, ``RedisHuey`` when ``REDIS_URL``
is set. Tests switch on immediate mode, which runs each task inline.

Rules for task authors:
- Decorate with :func:`task` (or :func:`periodic_task`): it runs the function inside an
  application context with its own database session.
- Enqueue only **after** committing the rows the task will read: the task runs in another
  process (or, in immediate mode, another session) and must see them.
- Pass ids, never ORM objects.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

F = TypeVar("F", bound=Callable[..., Any])

_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def _make_huey() -> Huey:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return RedisHuey("chat-connect", url=redis_url)
    path = os.environ.get("HUEY_SQLITE_PATH") or str(_INSTANCE / "huey.sqlite3")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("chat-connect", filename=path)


huey: Huey = _make_huey()
_app: Flask | None = None


def bind_app(app: Flask) -> None:
    """Give tasks an application to run in (the worker process calls this once)."""
    global _app
    _app = app


def _in_app_context(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        app = current_app._get_current_object() if has_app_context() else _app  # type: ignore[attr-defined]
        if app is None:
            from . import create_app

            app = create_app()
            bind_app(app)
        with app.app_context():
            return function(*args, **kwargs)

    return wrapped


def task(**options: Any) -> Callable[[F], F]:
    """Declare a background task (huey ``task`` run inside an application context)."""

    def decorator(function: F) -> F:
        return huey.task(**options)(_in_app_context(function))  # type: ignore[no-any-return]

    return decorator


def periodic_task(schedule: Any, **options: Any) -> Callable[[F], F]:
    """Declare a periodic task, e.g. ``periodic_task(crontab(minute="*"))``."""

    def decorator(function: F) -> F:
        return huey.periodic_task(schedule, **options)(_in_app_context(function))  # type: ignore[no-any-return]

    return decorator


__all__ = ["bind_app", "crontab", "huey", "periodic_task", "task"]
