"""Real worker processes: two at once never send one delivery twice (DL-11), and a worker
killed with SIGKILL twenty times during a run of 1,000 loses nothing (DL-09).

Each test runs ``python -m portal.notifications.worker`` (huey consumer + sweep) against the
test database and the sandbox's SMTP catcher, and counts what the catcher received per delivery.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import Delivery, DeliveryState, Notification

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 1000
BATCH = 16
WORKER_NAMES = ("a", "b")


def queue_emails(tenants: dict[str, Any], make_user: Any, total: int = TOTAL) -> None:
    """``total`` notifications spread over 25 members, each with one e-mail delivery."""
    members = [make_user(tenants["own"]) for _ in range(25)]
    organization_id = tenants["own"].id
    now = utcnow()
    rows = (
        db.session.execute(
            insert(Notification).returning(Notification.id),
            [
                {
                    "organization_id": organization_id,
                    "recipient_id": members[n % 25].id,
                    "title": f"通知 {n}",
                    "body": "本文",
                    "created_at": now,
                    "sensitive": False,
                }
                for n in range(total)
            ],
        )
        .scalars()
        .all()
    )
    db.session.execute(
        insert(Delivery),
        [
            {
                "notification_id": notification_id,
                "organization_id": organization_id,
                "channel": "email",
                "state": DeliveryState.PENDING,
                "reason": "not_linked",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for notification_id in rows
        ],
    )
    db.session.commit()


def start_worker(app: Any, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PORTAL_ENCRYPTION_KEYS": app.config["PORTAL_ENCRYPTION_KEYS"],
        "SMTP_URL": app.config["SMTP_URL"],
        "PROVIDER_CA_BUNDLE": app.config["PROVIDER_CA_BUNDLE"],
        "HUEY_SQLITE_PATH": str(tmp_path / "huey.sqlite3"),  # one queue shared by all workers
        "DELIVERY_LEASE_SECONDS": "3",
        "DELIVERY_SWEEP_SECONDS": "0.5",
        "DELIVERY_CONCURRENCY": "4",
        "DELIVERY_BATCH": str(BATCH),
        "PORTAL_INSTANCE_PATH": str(tmp_path / f"instance-{name}"),
    }
    env.pop("REDIS_URL", None)
    with open(tmp_path / f"worker-{name}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "portal.notifications.worker", "--threads", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_all_sent(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        left = db.session.scalar(
            select(db.func.count())
            .select_from(Delivery)
            .where(Delivery.state != DeliveryState.SENT)
        )
        if left == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"{left} deliveries still not sent")


def sends_per_delivery(sandbox: Any) -> Counter[str]:
    return Counter(mail["delivery"] for mail in sandbox.control("GET", "/_control/mail"))


def test_dl11_two_workers_send_each_delivery_exactly_once(
    app: Any, sandbox: Any, tenants: dict[str, Any], make_user: Any, tmp_path: Path
) -> None:
    queue_emails(tenants, make_user)
    workers = [start_worker(app, tmp_path, name) for name in WORKER_NAMES]
    try:
        wait_until_all_sent()
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=20)
    counts = sends_per_delivery(sandbox)
    assert len(counts) == TOTAL
    assert set(counts.values()) == {1}, "some delivery was sent twice"


def test_dl09_sigkill_twenty_times_loses_nothing(
    app: Any, sandbox: Any, tenants: dict[str, Any], make_user: Any, tmp_path: Path
) -> None:
    queue_emails(tenants, make_user)
    rng = random.Random(9)
    kills = 0
    for _ in range(20):
        worker = start_worker(app, tmp_path, "k")
        time.sleep(rng.uniform(0.8, 1.6))
        worker.kill()  # SIGKILL: no clean-up, leases left behind
        worker.wait()
        kills += 1
    survivor = start_worker(app, tmp_path, "final")
    try:
        wait_until_all_sent(timeout=180)
    finally:
        survivor.terminate()
        survivor.wait(timeout=20)
    counts = sends_per_delivery(sandbox)
    assert len(counts) == TOTAL, "a delivery was lost"
    duplicates = sum(count - 1 for count in counts.values())
    # Only rows in flight at a kill may be sent twice: at most one batch per kill.
    assert duplicates <= kills * BATCH
    assert kills == 20
