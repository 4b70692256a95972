"""Outbound webhooks: 10,000 events to a local receiver answering after 50 ms.

The receiver is the sandbox's (``/hooks/<name>``, run as its own process like in ``make run``),
set to answer after ``--delay-ms`` (default 50). The portal side is the real sender
(``portal.webhooks.sender``: claims with leases, signs with ``standardwebhooks``, POSTs to the
checked address with pooled connections) at its default concurrency (``WEBHOOK_CONCURRENCY``,
32), in this process.

Two runs, each on a fresh queue of ``--events`` events to one endpoint:
- ``healthy`` — the receiver accepts everything;
- ``failing`` — it answers 500 to ``--fail-ratio`` (default 0.2) of the requests, spread evenly.
  Failed events wait for the Standard Webhooks schedule (5 s, then 5 min…); the benchmark
  moves those waits to "now" between passes instead of sleeping through them, so it measures
  sending, not waiting, and checks that every event still ends ``sent``.

Prints one JSON line: events delivered per second (target ≥ 200), attempts per second, lost
(target 0: an event never accepted), accepted twice under one webhook-id (target 0), and how
long queueing the events took.

    .venv/bin/python bench/webhooks.py [--events 10000] [--delay-ms 50] [--fail-ratio 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from dispatch import build  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from portal.accounts.models import Organization  # noqa: E402
from portal.database import utcnow  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.notifications.models import DeliveryState  # noqa: E402
from portal.webhooks import endpoints, events, sender  # noqa: E402
from portal.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_receiver(instance: Path) -> tuple[subprocess.Popen[bytes], str]:
    http, tls, smtp = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(http),
            "--tls-port",
            str(tls),
            "--smtp-port",
            str(smtp),
            "--instance-dir",
            str(instance),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/_control/webhooks", timeout=1).raise_for_status()
            return process, base
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox receiver did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return round(ticks / os.sysconf("SC_CLK_TCK"), 1)


def queue(count: int) -> float:
    started = time.monotonic()
    organization = db.session.scalars(select(Organization)).one()
    for n in range(count):
        events.emit(organization.id, "notification.delivered", {"notification_id": n})
        if n % 1000 == 999:
            db.session.commit()
    db.session.commit()
    return time.monotonic() - started


def drain(limit_seconds: float = 600) -> tuple[float, int]:
    """Run send passes until nothing is left to send; the schedule's waits are skipped."""
    started = time.monotonic()
    passes = 0
    while time.monotonic() - started < limit_seconds:
        sender.run_due()
        passes += 1
        waiting = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.state == DeliveryState.RETRYING)
            .values(next_attempt_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
        if not waiting:
            break
    return time.monotonic() - started, passes


def one_run(app: Any, base: str, count: int, delay_ms: int, fail_ratio: float) -> dict[str, Any]:
    requests.post(f"{base}/_control/webhooks/reset", timeout=5)
    requests.post(
        f"{base}/_control/webhooks",
        json={"delay_ms": delay_ms, "fail_ratio": fail_ratio},
        timeout=5,
    ).raise_for_status()
    with app.app_context():
        for table in (WebhookAttempt, WebhookDelivery, WebhookEvent):
            db.session.query(table).delete()
        db.session.commit()
        queued = queue(count)
        seconds, passes = drain()
        states = dict(
            db.session.execute(
                select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
            )
            .tuples()
            .all()
        )
        attempts = db.session.scalar(select(func.count()).select_from(WebhookAttempt)) or 0
    received = requests.get(f"{base}/_control/webhooks", timeout=5).json()
    return {
        "fail_ratio": fail_ratio,
        "events": count,
        "seconds": round(seconds, 2),
        "events_per_second": round(count / seconds, 1),
        "attempts": attempts,
        "attempts_per_second": round(attempts / seconds, 1),
        "passes": passes,
        "sent": states.get(DeliveryState.SENT, 0),
        "lost": count - received["unique"],
        "accepted_twice": received["duplicates"],
        "answered_500": received["by_status"].get("500", 0),
        "queue_seconds": round(queued, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--fail-ratio", type=float, default=0.2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        receiver, base = start_receiver(Path(tmp) / "sandbox")
        try:
            database = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
            app = build(database, free_port(), {})
            with app.app_context():
                organization = db.session.scalars(select(Organization)).one()
                fields = endpoints.validate(
                    f"{base}/hooks/bench", "bench", ["notification.delivered"], False
                )
                endpoints.create(organization, None, fields)
            concurrency = app.config["WEBHOOK_CONCURRENCY"]
            healthy = one_run(app, base, args.events, args.delay_ms, 0.0)
            failing = one_run(app, base, args.events, args.delay_ms, args.fail_ratio)
        finally:
            receiver_cpu = _cpu_seconds(receiver.pid)
            receiver.kill()
            receiver.wait()
    print(
        json.dumps(
            {
                "bench": "webhooks",
                "delay_ms": args.delay_ms,
                "concurrency": concurrency,
                "ceiling_events_per_second": round(concurrency * 1000 / max(1, args.delay_ms), 1),
                "healthy": healthy,
                "failing": failing,
                "target_events_per_second": 200,
                # The receiver shares this machine's CPUs with the sender.
                "cpu_seconds": {"sender": round(time.process_time(), 1), "receiver": receiver_cpu},
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
