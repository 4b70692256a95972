"""``make bench``: every benchmark, one after another, and one table of their headline figures.

Short settings by default (a tenth of the published sizes: minutes, not an hour); ``--full``
runs each with its own defaults, the figures the closing notes publish (``load.py`` only then:
it needs gunicorn, Locust and PostgreSQL for several minutes). Each benchmark still prints its
one JSON line, which this script passes through and keeps in ``artifacts/bench/<name>.json``.

The table lists, per benchmark, its wall time and the figures whose names say what they are:
ratios, fractions of a limit, rates per second, p95s, losses, duplicates and 429s.

    .venv/bin/python bench/all.py [--full] [--only webhooks,pages]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "artifacts" / "bench"

#: name → (short arguments, whether it runs without --full)
BENCHES: dict[str, tuple[list[str], bool]] = {
    "pages": (["--members", "1000", "--events", "20000", "--rounds", "30"], True),
    "dispatch": (["--emails", "1000", "--dms", "200", "--latency-dms", "1000"], True),
    "dispatch_slack": (["--window-scale", "0.25", "--apprise-dms", "50"], True),
    "dispatch_chatwork": (["--dms", "200"], True),
    "dispatch_teams": (["--dms", "200"], True),
    "autolink": (["--members", "1000"], True),
    "reach": (["--members", "1000"], True),
    "release": (["--members", "1000"], True),
    "webhooks": (["--events", "1000"], True),
    "load": (["--seconds", "20", "--members", "1000", "--events", "2000"], False),
}
#: Words that mark a figure worth a column in the table.
HEADLINES = ("ratio", "fraction", "per_second", "per_s", "p95", "lost", "duplicat", "429", "twice")


def headline(document: Any, prefix: str = "") -> dict[str, Any]:
    """The scalar figures of a benchmark's JSON whose own name (the last dotted part) contains a
    headline word: not a call count whose URL happens to ("openid-configuration")."""
    found: dict[str, Any] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            found.update(headline(value, f"{prefix}{key}."))
    elif isinstance(document, int | float) and not isinstance(document, bool):
        name = prefix.rstrip(".")
        own = name.rsplit(".", 1)[-1].lower()
        if any(word in own for word in HEADLINES) and "sandbox_calls" not in name:
            found[name] = document
    return found


def run(name: str, arguments: list[str]) -> tuple[float, int, dict[str, Any] | None]:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    document = None
    for line in reversed(process.stdout.splitlines()):
        if line.startswith("{"):
            try:
                document = json.loads(line)
            except ValueError:
                continue
            print(line, flush=True)
            break
    if process.returncode != 0:
        sys.stderr.write(process.stderr[-2000:])
    return seconds, process.returncode, document


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="each benchmark's own defaults")
    parser.add_argument("--only", default="", help="comma-separated names")
    args = parser.parse_args()
    chosen = [n for n in args.only.split(",") if n] or [
        n for n, (_a, short) in BENCHES.items() if args.full or short
    ]
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in chosen:
        arguments = [] if args.full else BENCHES[name][0]
        seconds, code, document = run(name, arguments)
        if document is not None:
            (OUT / f"{name}.json").write_text(json.dumps(document, ensure_ascii=False, indent=1))
        rows.append((name, seconds, code, headline(document) if document else {}))
    print()
    print(f"{'benchmark':<18} {'time':>7}  {'ok':<3} figures")
    for name, seconds, code, figures in rows:
        shown = ", ".join(f"{k}={v}" for k, v in figures.items()) or "—"
        print(f"{name:<18} {seconds:>6.0f}s  {'yes' if code == 0 else 'NO':<3} {shown}")
    if any(code != 0 for _n, _s, code, _f in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
