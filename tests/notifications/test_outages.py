"""DL-10: the database goes away during dispatch — nothing is lost, work resumes, pages say 503.

On SQLite another process holds the database locked; on PostgreSQL the server is restarted
under a running worker process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from portal import create_app
from portal.extensions import db
from portal.notifications import dispatcher
from tests.conftest import base_config, sandbox_config
from tests.notifications.test_workers import (
    queue_emails,
    sends_per_delivery,
    start_worker,
    wait_until_all_sent,
)

ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))


def hold_lock(path: str, seconds: float, ready: threading.Event) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite variant of DL-10; PostgreSQL has its own below")
def test_dl10_sqlite_locked_during_dispatch(
    app: Any,
    sandbox: Any,
    tenants: dict[str, Any],
    make_user: Any,
    provider_sandbox: Any,
    tmp_path: Path,
) -> None:
    queue_emails(tenants, make_user, total=50)
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    impatient = create_app(
        base_config(
            database,
            SQLITE_BUSY_TIMEOUT_MS=200,
            DELIVERY_AUTOWAKE=False,
            **sandbox_config(provider_sandbox),
        )
    )
    ready = threading.Event()
    locker = threading.Thread(
        target=hold_lock, args=(database.removeprefix("sqlite:///"), 2.0, ready)
    )
    locker.start()
    ready.wait()
    failures = 0
    with impatient.app_context():
        # Reads still work under WAL; a request that must write answers 503, not 500.
        browser = impatient.test_client()
        assert browser.get("/healthz").status_code == 200
        form = browser.get("/login").text
        token = form.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        sign_in = browser.post(
            "/login",
            data={
                "csrf_token": token,
                "email": "admin@demo.example",
                "password": "correct horse battery",
            },
        )
        assert sign_in.status_code == 503
        assert "一時的にサービスを利用できません" in sign_in.text
        # The worker's loop: a failed sweep is retried by the next one.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                dispatcher.run_due()
                if not locker.is_alive():
                    break
            except OperationalError:
                failures += 1
                db.session.rollback()
                time.sleep(0.2)
        db.engine.dispose()
    locker.join()
    assert failures >= 1  # the lock really got in the way
    counts = sends_per_delivery(sandbox)
    assert len(counts) == 50  # 0 lost


@pytest.mark.skipif(
    not ON_POSTGRES, reason="needs the PostgreSQL server (runs in the PostgreSQL pass)"
)
def test_dl10_postgres_restart_during_dispatch(
    app: Any, sandbox: Any, tenants: dict[str, Any], make_user: Any, tmp_path: Path
) -> None:
    queue_emails(tenants, make_user, total=600)
    worker = start_worker(app, tmp_path, "pg")
    try:
        time.sleep(2)
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(  # noqa: S603 - fixed command
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],  # noqa: S607
            check=True,
            timeout=120,
        )
        db.session.remove()
        db.engine.dispose()
        started = time.monotonic()
        wait_until_all_sent(timeout=120)
        resumed_in = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    counts = sends_per_delivery(sandbox)
    assert len(counts) == 600  # 0 lost
    assert resumed_in < 60
