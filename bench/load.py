"""Load: Locust (headless, as a library) against gunicorn + the delivery worker.

Two runs, each on a fresh database holding an organization of N members, some audit events, a
few admins and support staff; right when the load starts, M notifications are queued as e-mail
deliveries, so the real worker (``python -m portal.notifications.worker``) dispatches them to the
sandbox's SMTP catcher while the users browse.

- ``postgresql``: 50 users (admins and support staff) log in once and then browse the member list
  (pages and searches), the audit log, the delivery log and /me/accounts (admins); support staff
  use ``?org=<slug>``. Targets: p95 < 300 ms, 0 failures, 0 deliveries lost.
- ``sqlite``: the same with 10 users. Target: 0 "database is locked" in the gunicorn and worker
  logs.

The sandbox (SMTP catcher) runs in its own process; the database is ANALYZEd after the bulk load,
as a live one would be. Each run also reports the cores each part used while the users browsed
(gunicorn, worker, sandbox, Locust, PostgreSQL), so a slow figure can be told from a full
machine. Prints one JSON line. Only loopback addresses are used.

    .venv/bin/python bench/load.py [--members 10000] [--notifications 10000] [--users 50]
        [--sqlite-users 10] [--seconds 90] [--only postgresql|sqlite]
"""

# Locust monkey-patches the standard library with gevent on import: import it first.
from locust import FastHttpUser, between, task  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]
import psycopg
import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-123"
KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtb2s="  # urlsafe base64 of 32 bytes (Fernet)
SLUG = "bench"
ADMINS = 5
SUPPORT = 5
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SEARCHES = ("佐藤", "田中", "member01", "翔太", "example")
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


# --- Locust users ---------------------------------------------------------------------------


class PortalUser(FastHttpUser):
    """Logs in once, then loops over the pages of its role."""

    abstract = True
    wait_time = between(0.5, 1.5)
    members = 10_000
    email_prefix = ""
    accounts = 1
    query = ""  # "?org=bench&" for support staff, "?" for admins
    _numbers = count()

    def on_start(self) -> None:
        number = next(PortalUser._numbers) % self.accounts
        page = self.client.get("/login", name="GET /login")
        match = TOKEN.search(page.text or "")
        with self.client.post(
            "/login",
            data={
                "csrf_token": match.group(1) if match else "",
                "email": f"{self.email_prefix}{number:02d}@bench.example",
                "password": PASSWORD,
            },
            name="POST /login",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"login answered {response.status_code}")

    def page(self, path: str, name: str) -> None:
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}{self.query}" if self.query else path
        with self.client.get(url, name=name, allow_redirects=False, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{url} answered {r.status_code}")

    @task(4)
    def members_page(self) -> None:
        pages = max(1, self.members // 50)
        self.page(f"/settings/members?page={random.randint(1, pages)}", "members ?page=N")

    @task(2)
    def members_search(self) -> None:
        self.page(f"/settings/members?q={random.choice(SEARCHES)}", "members ?q=")

    @task(2)
    def audit(self) -> None:
        self.page("/audit", "audit")

    @task(2)
    def deliveries(self) -> None:
        self.page("/deliveries", "deliveries")


class Admin(PortalUser):
    weight = 3
    email_prefix = "admin"
    accounts = ADMINS

    @task(1)
    def my_accounts(self) -> None:
        self.page("/me/accounts", "me/accounts")


class Support(PortalUser):
    weight = 2
    email_prefix = "support"
    accounts = SUPPORT
    query = f"org={SLUG}"


# --- Helpers run in a child process (seeding and queueing block; the load must not) ---------


def seed(members: int, events: int) -> None:
    from bench.seeding import seed_organization
    from portal import create_app

    app = create_app({"DELIVERY_AUTOWAKE": False})
    with app.app_context():  # migrated by `flask db upgrade` already
        seed_organization(
            members=members,
            events=events,
            password=PASSWORD,
            admins=[f"admin{n:02d}@bench.example" for n in range(ADMINS)],
            support=[f"support{n:02d}@bench.example" for n in range(SUPPORT)],
        )
        analyze()


def analyze() -> None:
    """Give the query planner statistics of the rows just bulk-loaded.

    A live database has them (autovacuum gathers them as rows arrive); a database loaded a second
    ago does not, and PostgreSQL then guesses "3 rows" and picks plans 20 to 100 times slower
    (the delivery log took 23 ms instead of 0.2 ms) until autovacuum's next round, a minute in.
    """
    from portal.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def queue(notifications: int) -> None:
    """Queue ``notifications`` e-mail deliveries to the members while the worker runs."""
    from sqlalchemy import select

    from bench.seeding import queue_deliveries
    from portal import create_app
    from portal.accounts.models import Organization, User
    from portal.extensions import db

    app = create_app({"DELIVERY_AUTOWAKE": False})
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id).filter_by(slug=SLUG))
        users = db.session.scalars(
            select(User.id).where(User.role == "member").order_by(User.id)
        ).all()
        queue_deliveries(organization_id, users, notifications)
        analyze()


# --- The run ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def delivery_states(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
            return {str(state): int(n) for state, n in rows}
    finally:
        engine.dispose()


def stats_of(entry: Any) -> dict[str, Any]:
    return {
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.50),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
    }


@dataclass
class Sandbox:
    """The sandbox providers and SMTP catcher, in a process of their own.

    Not in this process: Locust's users are greenlets here, and parsing 10,000 caught e-mails
    on the same event loop would delay reading the portal's answers, adding the catcher's work
    to the response times measured.
    """

    process: subprocess.Popen[bytes]
    http_url: str
    https_url: str
    smtp_port: int
    ca_bundle: str

    def received(self) -> int:
        answer = requests.get(f"{self.http_url}/_control/mail/count", timeout=30)
        return int(answer.json()["received"])


@contextmanager
def sandbox_process(tmp: Path) -> Iterator[Sandbox]:
    http, tls, smtp = free_port(), free_port(), free_port()
    instance = tmp / "sandbox"
    process = child(
        dict(os.environ),
        *("-m", "sandbox", "--port", str(http), "--tls-port", str(tls)),
        *("--smtp-port", str(smtp), "--instance-dir", str(instance)),
        log=tmp / "sandbox.log",
    )
    box = Sandbox(
        process,
        f"http://127.0.0.1:{http}",
        f"https://127.0.0.1:{tls}",
        smtp,
        str(instance / "sandbox-ca" / "ca.pem"),
    )
    try:
        for _ in range(120):  # up to 60 s to generate its CA and answer
            with suppress(requests.RequestException, ValueError):
                box.received()
                break
            gevent.sleep(0.5)
        else:
            raise SystemExit(f"the sandbox did not answer; see {tmp / 'sandbox.log'}")
        yield box
    finally:
        stop([process])


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(
    roles: dict[str, Callable[[], list[psutil.Process]]],
) -> dict[str, dict[int, float]]:
    """CPU time (user + system) used so far by each process of each role, by pid."""
    used: dict[str, dict[int, float]] = {}
    for role, processes in roles.items():
        used[role] = {}
        for process in processes():
            with suppress(psutil.Error):
                times = process.cpu_times()
                used[role][process.pid] = times.user + times.system
    return used


def cores_used(
    start: dict[str, dict[int, float]], end: dict[str, dict[int, float]], seconds: float
) -> dict[str, float]:
    """Cores each role kept busy between two snapshots; processes started between count from 0."""
    return {
        role: round(sum(t - start[role].get(pid, 0.0) for pid, t in end[role].items()) / seconds, 2)
        for role in end
    }


def child(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def run(name: str, url: str, args: argparse.Namespace, box: Sandbox, tmp: Path) -> dict[str, Any]:
    from portal.config import sandbox_urls

    users = args.users if name == "postgresql" else args.sqlite_users
    logs = tmp / name
    logs.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PORTAL_ENV": "development",
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-load",
        "PORTAL_ENCRYPTION_KEYS": KEY,
        "SMTP_URL": f"smtp://127.0.0.1:{box.smtp_port}",
        "PORTAL_INSTANCE_PATH": str(logs / "instance"),
        "HUEY_SQLITE_PATH": str(logs / "huey.sqlite3"),
        "PROVIDER_CA_BUNDLE": box.ca_bundle,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **sandbox_urls(box.http_url, box.https_url),
    }
    env.pop("REDIS_URL", None)
    caught_before = box.received()
    started = time.monotonic()
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--internal=seed",
            f"--members={args.members}",
            f"--events={args.events}",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    setup_seconds = time.monotonic() - started
    gunicorn_log, worker_log = logs / "gunicorn.log", logs / "worker.log"
    processes = [
        child(
            env,
            "-m",
            "gunicorn",
            "-w",
            str(args.gunicorn_workers),
            "--threads",
            str(args.gunicorn_threads),
            "-b",
            f"127.0.0.1:{port}",
            "wsgi:app",
            log=gunicorn_log,
        ),
        child(env, "-m", "portal.notifications.worker", log=worker_log),
    ]
    host = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # up to 60 s for gunicorn to answer
            with suppress(requests.RequestException):
                if requests.get(f"{host}/healthz", timeout=2).status_code == 200:
                    break
            gevent.sleep(0.5)
        else:
            raise SystemExit(f"{name}: gunicorn did not answer; see {gunicorn_log}")
        gunicorn = psutil.Process(processes[0].pid)
        roles: dict[str, Callable[[], list[psutil.Process]]] = {
            "gunicorn": lambda: [gunicorn, *gunicorn.children()],
            "worker": lambda: [psutil.Process(processes[1].pid)],
            "sandbox": lambda: [psutil.Process(box.process.pid)],
            "locust": lambda: [psutil.Process()],  # Locust only: the sandbox has its own process
        }
        if name == "postgresql":  # backends come and go with the connection pools
            roles["postgresql"] = lambda: [
                p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"
            ]
        PortalUser.members = args.members
        PortalUser._numbers = count()
        environment = Environment(user_classes=[Admin, Support], host=host)
        runner = environment.create_local_runner()
        load_started = time.monotonic()
        cpu_at_start = cpu_seconds(roles)
        runner.start(users, spawn_rate=args.spawn_rate)
        queuer = child(
            env,
            __file__,
            "--internal",
            "queue",
            "--notifications",
            str(args.notifications),
            log=logs / "queue.log",
        )
        gevent.sleep(args.seconds)
        runner.quit()
        load_seconds = time.monotonic() - load_started
        cpu_at_end = cpu_seconds(roles)
        while queuer.poll() is None:  # bounded by the queue's own size
            gevent.sleep(0.2)
        at_end = delivery_states(url)
        drain_started = time.monotonic()
        states = at_end
        while time.monotonic() - drain_started < args.drain_timeout:
            states = delivery_states(url)
            if states.get("sent", 0) >= args.notifications:
                break
            gevent.sleep(1)
        drain_seconds = time.monotonic() - drain_started
    finally:
        stop(processes)
    locked = sum(
        log.read_text(errors="replace").count("database is locked")
        for log in (gunicorn_log, worker_log)
    )
    pages = {
        entry.name: stats_of(entry)
        for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name)
    }
    total = stats_of(environment.stats.total)
    sent = states.get("sent", 0)
    figures: dict[str, Any] = {
        "users": users,
        "requests": total["requests"],
        "failures": total["failures"],
        "rps": round(total["requests"] / load_seconds, 1),
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "p99_ms": total["p99_ms"],
        "pages": pages,
        "errors": {
            f"{e.method} {e.name}: {e.error}": e.occurrences
            for e in environment.stats.errors.values()
        },
        "deliveries_total": sum(states.values()),
        "deliveries_sent_at_load_end": at_end.get("sent", 0),
        "deliveries_sent_after_drain": sent,
        "deliveries_states_after_drain": states,
        "deliveries_lost": args.notifications - sent,
        "drain_seconds": round(drain_seconds, 1),
        "caught_by_smtp": box.received() - caught_before,
        # Cores each part kept busy while the users browsed (the machine has os.cpu_count()).
        "cpu_cores_during_load": cores_used(cpu_at_start, cpu_at_end, load_seconds),
        "database_is_locked": locked,
        "gunicorn_errors_logged": gunicorn_log.read_text(errors="replace").count("Traceback"),
        "worker_errors_logged": worker_log.read_text(errors="replace").count("Traceback"),
        "setup_seconds": round(setup_seconds, 1),
        "load_seconds": round(load_seconds, 1),
    }
    if name == "postgresql":
        figures["target_met"] = (
            total["p95_ms"] < 300 and total["failures"] == 0 and figures["deliveries_lost"] == 0
        )
    else:
        figures["target_met"] = locked == 0
    if args.keep_logs:
        kept = Path(args.keep_logs) / name
        kept.mkdir(parents=True, exist_ok=True)
        for log in (gunicorn_log, worker_log):
            shutil.copy(log, kept / log.name)
    return figures


def postgresql(args: argparse.Namespace, box: Sandbox, tmp: Path) -> dict[str, Any]:
    database = f"bench_load_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        return run("postgresql", url, args, box, tmp)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20_000, help="audit events")
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50, help="concurrent users on PostgreSQL")
    parser.add_argument("--sqlite-users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=90, help="load duration of each run")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--keep-logs", help="copy the gunicorn and worker logs here")
    parser.add_argument("--internal", choices=("seed", "queue"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.internal == "seed":
        seed(args.members, args.events)
        return
    if args.internal == "queue":
        queue(args.notifications)
        return

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    # Anything this process imports from the portal keeps its files in the temp directory.
    os.environ["PORTAL_INSTANCE_PATH"] = str(tmp / "instance")
    os.environ["HUEY_SQLITE_PATH"] = str(tmp / "huey.sqlite3")
    figures: dict[str, Any] = {
        "members": args.members,
        "audit_events": args.events,
        "notifications": args.notifications,
        "seconds": args.seconds,
        "gunicorn": f"-w {args.gunicorn_workers} --threads {args.gunicorn_threads}",
        "think_time_s": "0.5-1.5",
        "cpu_count": os.cpu_count(),
    }
    try:
        with sandbox_process(tmp) as box:
            if args.only in (None, "postgresql"):
                figures["postgresql"] = postgresql(args, box, tmp)
            if args.only in (None, "sqlite"):
                url = f"sqlite:///{tmp / 'load.sqlite3'}"
                figures["sqlite"] = run("sqlite", url, args, box, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
