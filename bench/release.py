"""Release: 10,000 members' notifications held overnight go out at 09:00 at the provider's limit.

An organization of N members (default 10,000) on Chatwork, linked the real way (OAuth tokens
from the sandbox, contacts read with ``GET /contacts``), holds non-urgent notifications outside
working hours (weekdays 09:00–19:00, Japanese holidays off, Asia/Tokyo). One notification per
member is created through the real pipeline (``create_notification``: routing, the member's
window) with the clock at 22:00 JST on a recent working day — so every delivery is held until
09:00 the next working day, a moment already past. Before the drain the benchmark checks that
nothing is due a minute before 09:00 and everything is due at 09:00; then the dispatcher sends
them through ``ChatworkProvider`` against the sandbox's Chatwork limit (300 requests per 5
minutes per token), its window multiplied by ``--window-scale`` (default 0.02: 300 per 6 s) and
the portal told the same window (``CHATWORK_RATE_WINDOW``).

Prints one JSON line: time to drain against the limit (``fraction_of_limit``, target ≥ 0.9),
lost (target 0) and duplicated (target 0) messages as the sandbox received them, 429s (target
< 1 % of the calls), and how long holding N notifications took.

    .venv/bin/python bench/release.py [--members 10000] [--window-scale 0.02]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter as Tally
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dispatch  # noqa: E402
import time_machine  # noqa: E402
from dispatch import build  # noqa: E402
from dispatch_chatwork import Counter, connect, drain  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from portal.accounts.models import Organization, User  # noqa: E402
from portal.config import sandbox_urls  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.integrations.providers.chatwork import client as chatwork  # noqa: E402
from portal.notifications import dispatcher, services  # noqa: E402
from portal.notifications.models import Delivery  # noqa: E402
from portal.preferences import hours  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402

TOKYO = ZoneInfo("Asia/Tokyo")


def evening_before_a_release(
    now: datetime, organization: Organization
) -> tuple[datetime, datetime]:
    """22:00 JST on a recent day whose next 09:00 release has already passed."""
    window = hours.company_window(organization)
    day = now.astimezone(TOKYO).date() - timedelta(days=1)
    while True:
        evening = datetime(day.year, day.month, day.day, 22, 0, tzinfo=TOKYO).astimezone(UTC)
        release = window.next_open(evening)
        if release is not None and release < now - timedelta(minutes=5):
            return evening, release
        day -= timedelta(days=1)


def hold_everyone(app: object) -> tuple[float, datetime, int]:
    """One notification per member, created at 22:00 JST: seconds taken, release, held."""
    with app.app_context():  # type: ignore[attr-defined]
        organization = db.session.scalars(select(Organization)).one()
        organization.quiet_hours_on = True
        db.session.commit()
        evening, release = evening_before_a_release(datetime.now(UTC), organization)
        members = db.session.scalars(select(User).order_by(User.id)).all()
        started = time.monotonic()
        with time_machine.travel(evening, tick=False):
            for n, member in enumerate(members):
                services.create_notification(
                    organization,
                    member,
                    title="目標の更新",
                    body=f"今週の目標が更新されました（{n}）",
                )
                if n % 500 == 499:
                    db.session.commit()
            db.session.commit()
        took = time.monotonic() - started
        held = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.reason == hours.HELD_QUIET_HOURS, Delivery.next_attempt_at == release)
        )
        early = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(dispatcher.due_filter(release - timedelta(minutes=1)))
        )
        due = db.session.scalar(
            select(func.count()).select_from(Delivery).where(dispatcher.due_filter(release))
        )
        assert early == 0 and due == len(members), (early, due)
        return took, release, int(held or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--window-scale", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    limit, window = 300, 300 * args.window_scale
    dispatch.MEMBERS = args.members  # build() makes this many members
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per sandbox call otherwise
    with tempfile.TemporaryDirectory() as folder, run_sandbox(Path(folder) / "sandbox") as box:
        tmp = Path(folder)
        box.configure(rate_window_scale=args.window_scale, chatwork_access_ttl=3600)
        account_id = box.control(
            "POST",
            "/_control/data/chatwork",
            {"count": args.members, "domain": "bench.example", "match_ratio": 1.0},
        )["account_id"]
        app = build(
            f"sqlite:///{tmp / 'release.sqlite3'}",
            box.smtp_port,
            {
                "DELIVERY_CONCURRENCY": args.concurrency,
                "PROVIDER_CA_BUNDLE": box.ca_bundle,
                "CHATWORK_RATE_LIMIT": limit,
                "CHATWORK_RATE_WINDOW": window,
                **sandbox_urls(box.http_url, box.https_url),
            },
        )
        links = connect(app, box, account_id)
        hold_seconds, release, held = hold_everyone(app)
        counter = Counter()
        chatwork.api_call = counter  # type: ignore[assignment]
        time.sleep(window)  # let the sync's requests leave the window: measure sends only
        sent, elapsed = drain(app, args.members, max(120.0, 5 * args.members * window / limit))
        # Each member's text is unique ("…（n）"): a text received twice is a duplicate send.
        per_text = Tally(
            message.body
            for room in box.state.chatwork.rooms.values()
            for message in room.messages
            if "今週の目標が更新されました" in message.body
        )
        received = sum(per_text.values())
        per_second = sent / elapsed
        print(
            json.dumps(
                {
                    "release": {
                        "members": args.members,
                        "linked": len(links),
                        "held_until_0900": held,
                        "release_at": release.astimezone(TOKYO).isoformat(),
                        "hold_seconds": round(hold_seconds, 1),
                        "sent": sent,
                        "lost": args.members - sent,
                        "received_by_sandbox": received,
                        "duplicates": sum(n - 1 for n in per_text.values() if n > 1),
                        "by_email": args.members - len(links),
                        "drain_seconds": round(elapsed, 2),
                        "real_drain_hours": round(elapsed / args.window_scale / 3600, 2),
                        "limit": f"{limit} per {window:g} s (300 per 300 s x {args.window_scale})",
                        "per_second": round(per_second, 2),
                        "fraction_of_limit": round(per_second / (limit / window), 3),
                        "calls": counter.calls,
                        "http_429": counter.limited,
                        "share_429": round(counter.limited / max(1, counter.calls), 4),
                    }
                },
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
