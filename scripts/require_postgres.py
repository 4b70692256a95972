"""Fail with a clear message when PostgreSQL is unreachable: its tests never silently skip."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text


def main(url: str) -> int:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        print(f"PostgreSQL is not reachable at {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(
            "Start it (pg_ctlcluster ... main start) — these tests are not optional.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
