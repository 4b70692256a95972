"""Page speed at scale: 10,000 members and 200,000 audit events on SQLite.

Measures server time (request in, response out, through the whole Flask stack) of the members
page (first page, page 150, a search) and the audit page, each as a ratio to /healthz measured
in the same run. Prints one JSON line. Target: every p95 ≤ 8 × the /healthz p95.

    .venv/bin/python bench/pages.py [--members 10000] [--events 200000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from bench.seeding import seed_organization
from portal import create_app

PASSWORD = "bench-password-123"
KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtb2s="


def build(database: Path, members: int, events: int) -> Any:
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SECRET_KEY": "bench",
            "PORTAL_ENCRYPTION_KEYS": KEY,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        }
    )
    with app.app_context():
        upgrade()
        seed_organization(
            members=members,
            events=events,
            password=PASSWORD,
            admins=["admin@bench.example"],
            days=365,
        )
    return app


def timed(client: Any, path: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    return samples


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp) / "bench.sqlite3", args.members, args.events)
        client = app.test_client()
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token
        client.post(
            "/login",
            data={
                "csrf_token": token.group(1),
                "email": "admin@bench.example",
                "password": PASSWORD,
            },
        )
        paths = {
            "healthz": "/healthz",
            "members_first": "/settings/members",
            "members_page_150": "/settings/members?page=150",
            "members_search": "/settings/members?q=%E4%BD%90%E8%97%A4",  # 佐藤
            "audit_first": "/audit",
            "audit_filtered": "/audit?action=link.created",
        }
        for path in paths.values():  # warm caches and the connection pool
            timed(client, path, 5)
        results = {name: timed(client, path, args.rounds) for name, path in paths.items()}
    base = percentile(results["healthz"], 95)
    figures: dict[str, Any] = {
        "members": args.members,
        "audit_events": args.events,
        "rounds": args.rounds,
    }
    for name, samples in results.items():
        figures[name] = {
            "p50_ms": round(percentile(samples, 50) * 1000, 2),
            "p95_ms": round(percentile(samples, 95) * 1000, 2),
            "p95_ratio_to_healthz": round(percentile(samples, 95) / base, 2),
        }
    figures["target_met"] = all(
        figures[name]["p95_ratio_to_healthz"] <= 8 for name in paths if name != "healthz"
    )
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
