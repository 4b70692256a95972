"""Reach: install the Teams app for 10,000 linked members against Graph's 30 installs/s.

A sandbox tenant of N users (default 10,000), every one with the member's e-mail, and an
organization of N members linked to them the real way (Graph ``/users`` sync, e-mail
auto-link). ``--blocked`` of them (default 1 %) are kept from the app by an app permission
policy. Then ``installs.run_install`` installs the app for everyone who cannot be reached:
``POST installedApps`` per member, then the installation and its chat.

The sandbox enforces Graph's limits per app per tenant (installedApps POST 30/s, GET 60/s,
sliding windows) at their real size by default; ``--window-scale`` multiplies every window
(and the portal's gates, ``TEAMS_INSTALL_RATE`` / ``TEAMS_READ_RATE``, alike), but on this
machine the two processes top out near 100 installs/s (300 HTTPS calls/s, CPU-bound), so a
window compressed below about 0.4 measures the harness, not the installer. Every sandbox
call waits ``--latency-ms`` (default 40) as Graph's answers do, so the run needs its worker
threads (``TEAMS_INSTALL_WORKERS``, default here 64); the sandbox runs in a process of its
own. Teams does not post activities here (``post_to_portal`` off): every conversation comes
from Graph's chat id.

Prints one JSON line: wall time, installs per second against the limit (``share_of_limit``,
target ≥ 0.9), 429s (target < 1 % of the install calls), outcomes and failures by reason,
and the members reachable by DM afterwards (target: all but those the policy blocks).

    .venv/bin/python bench/reach.py [--members 10000] [--window-scale 1.0] [--latency-ms 40]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

import demodata  # noqa: E402
from portal import create_app  # noqa: E402
from portal.accounts.models import Organization, User  # noqa: E402
from portal.config import sandbox_urls  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.integrations import directory  # noqa: E402
from portal.integrations.models import (  # noqa: E402
    AccountLink,
    ChatAccount,
    Integration,
    IntegrationState,
)
from portal.integrations.providers.teams import installs  # noqa: E402
from portal.tasks import huey  # noqa: E402

KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtb2s="
TENANT = "7b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
POST = "microsoft:POST /graph/v1.0/users/{id}/teamwork/installedApps"
INSTALLS_PER_SECOND = 30


def counts(box: Any) -> dict[str, int]:
    return dict(box.control("GET", "/_control/requests")["counts"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnProcessSandbox:
    """``python -m sandbox`` in a process of its own: in this one, the sandbox's TLS and
    request handling would share the interpreter lock with the installer being measured."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ports = [free_port() for _ in range(3)]
        self.http_url = f"http://127.0.0.1:{ports[0]}"
        self.https_url = f"https://127.0.0.1:{ports[1]}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(ports[0]), "--tls-port",
             str(ports[1]), "--smtp-port", str(ports[2]), "--instance-dir", str(folder)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.http_url}/_control/config", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the sandbox did not start")

    @property
    def ca_bundle(self) -> str:
        return str(self.folder / "sandbox-ca" / "ca.pem")

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, self.http_url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def configure(self, **values: Any) -> Any:
        return self.control("POST", "/_control/config", values)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--blocked", type=float, default=0.01)
    parser.add_argument("--window-scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=int, default=40)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    huey.immediate = True
    with tempfile.TemporaryDirectory() as tmp:
        box = OwnProcessSandbox(Path(tmp) / "sandbox")
        try:
            result = measure(args, box, tmp)
        finally:
            box.stop()
    print(json.dumps(result, ensure_ascii=False))


def measure(args: argparse.Namespace, box: OwnProcessSandbox, tmp: str) -> dict[str, Any]:
    scale = args.window_scale
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SECRET_KEY": "bench",
            "PORTAL_ENCRYPTION_KEYS": KEY,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3",
            "PROVIDER_CA_BUNDLE": box.ca_bundle,
            "DELIVERY_AUTOWAKE": False,
            "TEAMS_INSTALL_RATE": installs.INSTALL_RATE / scale,
            "TEAMS_READ_RATE": installs.READ_RATE / scale,
            "TEAMS_INSTALL_WORKERS": args.workers,
            **sandbox_urls(box.http_url, box.https_url),
        }
    )
    box.control(
        "POST",
        "/_control/data/microsoft",
        {"count": args.members, "domain": "bench.example", "match_ratio": 1.0,
         "tenant_id": TENANT, "seed": 1},
    )  # fmt: skip
    people = demodata.members(args.members, "bench.example")
    blocked = [p.email for p in people[:: max(1, round(1 / args.blocked))]] if args.blocked else []
    box.control("POST", "/_control/teams/app", {"tenant_id": TENANT, "block": blocked})
    # The setup's sync needs no time zones: without the permission it asks Graph once, not
    # for 10,000 mailboxes (minutes the benchmark does not measure).
    box.configure(post_to_portal=False, mailbox_settings_permission=False)
    with app.app_context():
        upgrade()
        organization = Organization(slug="bench", name="ベンチ株式会社")
        db.session.add(organization)
        db.session.flush()
        db.session.execute(
            insert(User),
            [
                {"organization_id": organization.id, "email": p.email, "name": p.name,
                 "role": "member", "password_hash": None}
                for p in people
            ],
        )  # fmt: skip
        integration = Integration(
            organization_id=organization.id,
            provider="teams",
            state=IntegrationState.CONNECTED,
            external_id=TENANT,
            display_name="ベンチ株式会社",
            config={},
        )
        db.session.add(integration)
        db.session.commit()
        sync = directory.start_sync(integration, None)
        db.session.refresh(sync)
        assert sync.state.value == "done", sync.error
        linked = db.session.scalar(select(func.count()).select_from(AccountLink)) or 0

        box.configure(
            latency_ms=args.latency_ms,
            rate_window_scale=scale,
        )
        before = counts(box)
        started = time.perf_counter()
        run = installs.start_install(integration, None)
        wall = time.perf_counter() - started
        db.session.refresh(run)
        assert run.state.value == "done", (run.state, run.error)
        calls = counts(box)
        posts = calls.get(POST, 0) - before.get(POST, 0)
        reasons: Counter[str] = Counter()
        reachable = 0
        for extra in db.session.scalars(
            select(ChatAccount.extra).where(ChatAccount.integration_id == integration.id)
        ):
            install = (extra or {}).get("install") or {}
            if install.get("code"):
                reasons[str(install["code"])] += 1
            if (extra or {}).get("conversation_id"):
                reachable += 1
        answered = posts - run.throttled
        limit = INSTALLS_PER_SECOND / scale
        result = {
            "bench": "reach",
            "members": args.members,
            "linked": linked,
            "blocked_by_policy_in_sandbox": len(blocked),
            "window_scale": scale,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "wall_s": round(wall, 1),
            "real_time_s": round(wall / scale, 1),
            "install_calls": posts,
            "installs_per_s": round(answered / wall, 1),
            "limit_per_s": round(limit, 1),
            "share_of_limit": round(answered / wall / limit, 3),
            "http_429": run.throttled,
            "http_429_share": round(run.throttled / posts, 4) if posts else 0,
            "installed": run.installed,
            "already": run.already,
            "blocked": run.blocked,
            "failed": run.failed,
            "failures_by_reason": dict(reasons),
            "reachable_after": reachable,
            "reachable_target": linked - len(blocked),
        }
    return result


if __name__ == "__main__":
    main()
