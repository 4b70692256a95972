"""Delivery throughput: the worker against the SMTP catcher and a fake rate-limited chat provider.

Prints one JSON line with, measured in one run:
- ``email``: N e-mails through the real worker process (``python -m portal.notifications.worker``)
  to the sandbox's SMTP catcher: throughput, enqueue-to-sent p50/p95, worker peak RSS.
- ``latency_bound``: DMs to a fake chat API that answers after 50 ms with no limit, sent by the
  dispatcher in ``--processes`` worker processes, as a ratio to a plain sequential loop doing
  the same sends (target ≥ 20×); and the same with one worker process.
- ``rate_bound``: DMs to the same API enforcing R requests per second (429 + Retry-After past
  it), from one worker process: throughput as a fraction of R (target ≥ 0.97) and the share of
  calls answered 429 (target < 1 %); and the same from ``--processes`` sharing the bucket.

The chat parts run the dispatcher (the same code the worker runs) in processes forked from this
one, because the fake provider is registered here; the fake API they call is served from a
process of its own, as a real provider would be. The e-mail part runs the real worker process.

    .venv/bin/python bench/dispatch.py [--emails 10000] [--dms 1000] [--latency-dms 5000]
        [--rate 50] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

import demodata  # noqa: E402
from bench.seeding import queue_deliveries  # noqa: E402
from portal import create_app  # noqa: E402
from portal.accounts.models import Organization, User  # noqa: E402
from portal.config import sandbox_urls  # noqa: E402
from portal.database import utcnow  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.integrations.models import (  # noqa: E402
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
    LinkMethod,
)
from portal.integrations.providers.base import (  # noqa: E402
    ChatProvider,
    DeliveryResult,
    Message,
    PacingBudget,
    ProviderRateLimited,
    TemporaryProviderError,
)
from portal.integrations.registry import providers  # noqa: E402
from portal.notifications import dispatcher  # noqa: E402
from portal.notifications.models import Delivery, DeliveryState, Notification  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402

KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtb2s="
MEMBERS = 1000


class FakeChatAPI:
    """A chat API: answers after ``latency`` seconds; past ``limit`` calls in any second, 429."""

    def __init__(self, latency: float, limit: float | None) -> None:
        self.latency = latency
        self.limit = limit
        self.calls = 0
        self.limited = 0
        self.accepted: deque[float] = deque()
        self.lock = threading.Lock()

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request to ``path``."""
        if path == "/stats":  # read by the benchmark, not counted
            return 200, {}, json.dumps({"calls": self.calls, "limited": self.limited}).encode()
        now = time.monotonic()
        with self.lock:
            self.calls += 1
            while self.accepted and now - self.accepted[0] >= 1.0:
                self.accepted.popleft()
            if self.limit is not None and len(self.accepted) >= self.limit:
                self.limited += 1
                wait = 1.0 - (now - self.accepted[0])
                return 429, {"Retry-After": f"{wait:.3f}"}, b"{}"
            self.accepted.append(now)
        time.sleep(self.latency)
        return 200, {}, b'{"id": "m"}'

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """An HTTP/1.1 handler that keeps connections open, as a provider's API does.

        (Werkzeug's development server closes every connection after one response: each send
        would pay for a new TCP connection that no real provider makes it pay for.)
        """
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle's algorithm the body would wait
            # for the client's delayed ACK of the headers (40 ms a call on Linux).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def _answer(self) -> None:
                status, headers, body = api.answer(self.path)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a line per call otherwise

        return Handler


class BenchProvider(ChatProvider):
    """The provider interface over the fake API: the same seam Slack, Chatwork and Teams use."""

    key = "bench"  # its own provider key, so its own channel, in this process only
    name = "Fake chat"

    def __init__(self, url: str, rate: float, limited: bool) -> None:
        self.url = url
        self.rate = rate
        self.limited = limited
        self.session = requests.Session()
        # Like the real provider clients: no per-request scan of proxy/CA environment variables,
        # and (like the Teams client) a connection pool as wide as the sends in flight, so no
        # send pays for a new connection because the pool's default ten were taken.
        self.session.trust_env = False
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))

    def client(self, integration: Integration) -> Any:
        return self

    def pacing(self, integration: Integration) -> PacingBudget:
        # A bucket of burst b and rate r allows at most b + r·L takes in any L seconds, so a
        # one-second window sees at most floor(b + r·(1 + jitter)) sends. At 99 % of R with a
        # burst of 1.2 that stays ≤ R (for R = 50) while the sends' arrival jitters by up to
        # 6 ms; the 0.2 above one token absorbs a taker that wakes up to 4 ms late, time a
        # burst of exactly 1 would lose on every message. A send that arrives later than that
        # behind its predecessor can make a window one too many: answered 429 (about one in
        # 1,000 in the benchmark's runs), it costs one slot and a retry. Generous when no limit
        # binds.
        return PacingBudget(
            f"bench:{integration.external_id}", self.rate, 1.2 if self.limited else 100
        )

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        response = self.session.post(
            self.url, json={"to": account.external_id, "text": message.title}, timeout=10
        )
        if response.status_code == 429:
            raise ProviderRateLimited("429", retry_after=float(response.headers["Retry-After"]))
        if response.status_code >= 500:
            raise TemporaryProviderError(
                str(response.status_code), code=f"http_{response.status_code}"
            )
        return DeliveryResult(provider_message_id=response.json()["id"])


class FakeAPIProcess:
    """:class:`FakeChatAPI` served from a process of its own.

    A real provider does not share our interpreter: served from this process, the fake's
    request handling would take the GIL from the dispatcher it is meant to measure.
    """

    def __init__(self, latency: float, limit: float | None) -> None:
        ready = multiprocessing.get_context("fork").Queue()
        self.process = multiprocessing.get_context("fork").Process(
            target=self._serve, args=(latency, limit, ready), daemon=True
        )
        self.process.start()
        self.url = f"http://127.0.0.1:{ready.get(timeout=30)}/"

    @staticmethod
    def _serve(latency: float, limit: float | None, ready: Any) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), FakeChatAPI(latency, limit).handler())
        server.daemon_threads = True
        ready.put(server.server_port)
        server.serve_forever()

    def stats(self) -> dict[str, int]:
        answer: dict[str, int] = requests.get(f"{self.url}stats", timeout=10).json()
        return answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


def build(database_url: str, smtp_port: int, extra: dict[str, Any]) -> Any:
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SECRET_KEY": "bench",
            "PORTAL_ENCRYPTION_KEYS": KEY,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "DELIVERY_AUTOWAKE": False,
            **extra,
        }
    )
    with app.app_context():
        upgrade()
        organization = Organization(slug="bench", name="ベンチ株式会社")
        db.session.add(organization)
        db.session.flush()
        password = generate_password_hash("x", method="pbkdf2:sha256:1000")
        db.session.execute(
            insert(User),
            [
                {
                    "organization_id": organization.id,
                    "email": p.email,
                    "name": p.name,
                    "role": "member",
                    "password_hash": password,
                    "is_active": True,
                    "created_at": utcnow(),
                }
                for p in demodata.members(MEMBERS, "bench.example")
            ],
        )
        db.session.commit()
    return app


def queue(
    app: Any, count: int, channel: str, links: dict[int, tuple[int, int]] | None = None
) -> None:
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id))
        assert organization_id is not None
        users = db.session.scalars(select(User.id).order_by(User.id)).all()
        queue_deliveries(organization_id, users, count, channel, links, chunk=max(1, count))


def link_everyone(app: Any) -> dict[int, tuple[int, int]]:
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id))
        integration = Integration(
            organization_id=organization_id,
            provider=BenchProvider.key,
            state=IntegrationState.CONNECTED,
            external_id="bench-tenant",
        )
        db.session.add(integration)
        db.session.flush()
        users = db.session.scalars(select(User).order_by(User.id)).all()
        accounts = (
            db.session.execute(
                insert(ChatAccount).returning(ChatAccount.id),
                [
                    {
                        "organization_id": organization_id,
                        "integration_id": integration.id,
                        "external_id": f"29:{u.id}",
                        "name": u.name,
                        "email": u.email,
                        "extra": {},
                        "is_active": True,
                        "synced_at": utcnow(),
                    }
                    for u in users
                ],
            )
            .scalars()
            .all()
        )
        db.session.execute(
            insert(AccountLink),
            [
                {
                    "organization_id": organization_id,
                    "integration_id": integration.id,
                    "user_id": u.id,
                    "chat_account_id": a,
                    "method": LinkMethod.MANUAL,
                    "created_at": utcnow(),
                }
                for u, a in zip(users, accounts, strict=True)
            ],
        )
        db.session.commit()
        return {u.id: (integration.id, a) for u, a in zip(users, accounts, strict=True)}


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def sent_stats(app: Any) -> tuple[int, list[float]]:
    with app.app_context():
        rows = db.session.execute(
            select(Notification.created_at, Delivery.sent_at)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.state == DeliveryState.SENT)
        ).all()
        return len(rows), [(sent - created).total_seconds() for created, sent in rows]


def email_part(tmp: Path, count: int, box: Any) -> dict[str, Any]:
    database = f"sqlite:///{tmp / 'email.sqlite3'}"
    app = build(database, box.smtp_port, {})
    queue(app, count, "email")
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": database,
        "SECRET_KEY": "bench",
        "PORTAL_ENCRYPTION_KEYS": KEY,
        "SMTP_URL": f"smtp://127.0.0.1:{box.smtp_port}",
        "HUEY_SQLITE_PATH": str(tmp / "huey.sqlite3"),
        "DELIVERY_CONCURRENCY": "8",
        "PORTAL_INSTANCE_PATH": str(tmp / "instance"),
        **sandbox_urls(box.http_url, box.https_url),
    }
    env.pop("REDIS_URL", None)
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "portal.notifications.worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_kb = 0
    try:
        while True:
            status = Path(f"/proc/{worker.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
            sent, _ = sent_stats(app)
            if sent >= count:
                break
            if time.monotonic() - started > 900:
                raise SystemExit("e-mail part did not finish in 15 minutes")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    sent, latencies = sent_stats(app)
    return {
        "sent": sent,
        "seconds": round(elapsed, 2),
        "per_second": round(sent / elapsed, 1),
        "enqueue_to_sent_p50_s": round(percentile(latencies, 50), 2),
        "enqueue_to_sent_p95_s": round(percentile(latencies, 95), 2),
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        "caught_by_smtp": box.state.mail.received,
    }


def dispatch_until(app: Any, count: int, worker: str, deadline: float) -> None:
    """One worker process's loop: passes of the dispatcher until ``count`` rows are sent or
    ``deadline`` (monotonic) passes."""
    with app.app_context():
        db.engine.dispose(close=False)  # a forked child opens its own connections
        while time.monotonic() < deadline:
            dispatcher.run_due(worker=worker)
            sent, _ = sent_stats(app)
            if sent >= count:
                return
            time.sleep(0.05)


def drain(
    app: Any,
    count: int,
    processes: int,
    name: str,
    deadline_s: float = 900.0,
    running: Callable[[], None] | None = None,
) -> float:
    """Run the dispatcher in ``processes`` worker processes, forked from this one (so they
    inherit what the benchmark registered or patched), until ``count`` deliveries are sent or
    ``deadline_s`` passes; return the seconds it took. They share the claims and the pacing
    buckets through the database, as a deployment's workers do, and none shares this
    process's interpreter: a sandbox served from here does not take their GIL. ``running`` is
    called once they are (a thread it starts is not copied into them)."""
    with app.app_context():
        db.engine.dispose()
    fork = multiprocessing.get_context("fork")
    started = time.monotonic()
    workers = [
        fork.Process(
            target=dispatch_until, args=(app, count, f"bench-{name}-{n}", started + deadline_s)
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    if running is not None:
        running()
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        raise SystemExit(f"{name}: a worker process failed")
    return time.monotonic() - started


def chat_part(
    tmp: Path,
    name: str,
    count: int,
    latency: float,
    limit: float | None,
    concurrency: int,
    processes: int,
    box: Any,
) -> dict[str, Any]:
    """``count`` DMs sent by ``processes`` worker processes, each ``concurrency`` sends at a
    time, as a deployment scales the worker: they share the claims and the pacing bucket
    through the database. The processes are forked after the fake provider is registered."""
    api = FakeAPIProcess(latency, limit)
    budget = limit * 0.99 if limit else 10_000.0  # pace just under the provider's limit
    providers._providers[BenchProvider.key] = BenchProvider(api.url, budget, limit is not None)
    app = build(
        f"sqlite:///{tmp / (name + '.sqlite3')}",
        box.smtp_port,
        {"DELIVERY_CONCURRENCY": concurrency},
    )
    queue(app, count, BenchProvider.key, link_everyone(app))
    elapsed = drain(app, count, processes, name)
    stats = api.stats()
    api.stop()
    return {
        "sent": sent_stats(app)[0],
        "processes": processes,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 2),
        "calls": stats["calls"],
        "answered_429": stats["limited"],
    }


def sequential_baseline(count: int, latency: float) -> float:
    api = FakeAPIProcess(latency, None)
    session = requests.Session()
    session.trust_env = False  # the same HTTP client settings as the provider under test
    started = time.monotonic()
    for n in range(count):
        session.post(api.url, json={"to": n, "text": "x"}, timeout=10)
    elapsed = time.monotonic() - started
    api.stop()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--dms", type=int, default=1000, help="DMs in the rate-bound parts")
    # At 600 DMs/s, 1,000 take under 2 s, of which forking the workers and their first queries
    # are a good part: the figure swung from 14x to 31x between runs. 5,000 measure the pace.
    parser.add_argument(
        "--latency-dms", type=int, default=5000, help="DMs in the latency-bound parts"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="fake provider limit, requests/s")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32, help="sends in flight per process")
    parser.add_argument(
        "--processes", type=int, default=2, help="worker processes (this machine has 2 cores)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, run_sandbox(Path(folder) / "sandbox") as box:
        tmp = Path(folder)
        email = email_part(tmp, args.emails, box)
        chat = {"latency": args.latency, "concurrency": args.concurrency, "box": box}
        unlimited = {**chat, "count": args.latency_dms, "limit": None}
        latency = chat_part(tmp, "latency", processes=args.processes, **unlimited)
        # One process alone is bound by one core (the GIL): the figure says what each adds.
        alone = chat_part(tmp, "latency-alone", processes=1, **unlimited)
        sequential = sequential_baseline(args.dms, args.latency)
        limited = {**chat, "count": args.dms, "limit": args.rate}
        rate = chat_part(tmp, "rate", processes=1, **limited)
        # Several processes share the bucket through the database: each take waits for the
        # others' transactions, so tokens reach the provider with more jitter.
        fleet = chat_part(tmp, "rate-fleet", processes=args.processes, **limited)
    figures = {
        "email": email,
        "latency_bound": {
            **latency,
            "sequential_per_second": round(sequential, 2),
            "ratio_to_sequential": round(latency["per_second"] / sequential, 1),
            "one_process_per_second": alone["per_second"],
            "one_process_ratio_to_sequential": round(alone["per_second"] / sequential, 1),
        },
        "rate_bound": {
            **rate,
            "limit_per_second": args.rate,
            "fraction_of_limit": round(rate["per_second"] / args.rate, 3),
            "share_429": round(rate["answered_429"] / max(1, rate["calls"]), 4),
            "processes_sharing_the_bucket": args.processes,
            "fleet_fraction_of_limit": round(fleet["per_second"] / args.rate, 3),
            "fleet_share_429": round(fleet["answered_429"] / max(1, fleet["calls"]), 4),
        },
    }
    figures["targets_met"] = (  # issue 18's targets
        figures["latency_bound"]["ratio_to_sequential"] >= 20
        and figures["rate_bound"]["fraction_of_limit"] >= 0.97
        and figures["rate_bound"]["share_429"] < 0.01
    )
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
