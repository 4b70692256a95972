"""Slack part of the dispatch benchmark: 1,000 DMs through the sandbox, the portal against Apprise.

A sandbox workspace of 1,000 users and an organization of 1,000 members linked to them the
real way (bot token from the consent page + ``oauth.v2.access``, ``users.list`` sync, e-mail
auto-link). Then, in the same run and to the same recipients with the same texts:

- **portal**: 1,000 Slack deliveries queued and sent by ``dispatcher.run_due()`` in worker
  processes forked from this one (the sandbox stays here, as a real Slack would not share
  their interpreter): one where the limits bind, ``--processes`` where latency does; through
  ``SlackProvider`` (``chat.postMessage`` to the user id, no ``conversations.open``; a 1/s
  per-channel bucket and the workspace's
  *learned* budget, ``notifications/ceiling.py``, which starts at 1 message/s and is never told
  the workspace's limit; 429 → rescheduled);
- **apprise**: Apprise's Slack plugin in bot mode (``slack://xoxb-…/+U…``), its ``api_url``
  pointed at the sandbox's HTTPS listener and ``verify`` at the sandbox CA, one plugin instance
  sending the DMs one after another (Apprise's own pacing, no retries: its defaults; ``+U…`` is
  Apprise's raw-id target: ``@U…`` is sent as ``channel="@U…"``, which the sandbox refuses).
  Apprise waits 1.2 s between calls whatever the limits, so it sends a sample
  (``--apprise-dms``, default 100) and its rate is that sample's.

Apprise's bot-mode body is ``attachments`` only (no ``text``, no top-level ``blocks``): Slack
accepts that, the sandbox answers ``no_text``. ``accept_attachments()`` patches the sandbox's
``chat.postMessage`` handler in this process so attachments count as content (the stored text
is the attachments' title/text); nothing else changes.

Both are timed; 429s are counted on the client side, receipts with the control API
(``GET /_control/messages?provider=slack``), calls per method (429s included) with
``GET /_control/requests``. ``ratio`` is portal throughput ÷ Apprise's;
``fraction_of_workspace_limit`` is portal throughput ÷ the sandbox's workspace limit
(400 per 60 s).

Parts, in one run:

1. ``at_slack_limits``: the sandbox's real Slack windows (``sandbox/config.py`` ``RATE_LIMITS``:
   chat.postMessage 5/1 s and 60/60 s per channel, 400/60 s per workspace). ``--window-scale``
   compresses every window for a quicker run (``make bench`` uses 0.25); the portal's own time
   constants (start rate, the learned budget's window) and Apprise's interval are compressed by
   the same factor, so ``real_time_s`` = seconds ÷ scale. Two things do not compress: the
   sandbox's ``Retry-After`` is whole seconds (at least 1), and sends on their way when a 429
   comes are as many as real latency makes them, so a compressed run shows more 429s.
2. ``limit_halved``: a fresh database (nothing learned yet), and once half the DMs are sent the
   sandbox's workspace limit is halved through the control API: how soon the learned limit is
   under the new one (``recovery_in_windows``) and the share of calls answered 429 after it.
3. ``latency_bound`` (``--scale``, default 1000): every limit ×1000 and ``--latency-ms`` per
   call, so latency binds instead of the limits.

    .venv/bin/python bench/dispatch_slack.py [--dms 1000] [--window-scale 1] [--apprise-dms 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from apprise import Apprise  # noqa: E402
from apprise.plugins import slack as apprise_slack  # noqa: E402
from autolink import TEAM, counts, diff, install_token  # noqa: E402
from calls import CallCounter, portal_figures  # noqa: E402
from dispatch import MEMBERS, build, drain, queue  # noqa: E402
from sqlalchemy import select  # noqa: E402

from portal.accounts.models import Organization  # noqa: E402
from portal.config import sandbox_urls  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.integrations import directory, linking  # noqa: E402
from portal.integrations.models import (  # noqa: E402
    AccountLink,
    ChatAccount,
    DirectorySync,
    Integration,
    IntegrationState,
)
from portal.integrations.providers.slack import SlackProvider  # noqa: E402
from portal.integrations.providers.slack import client as slack  # noqa: E402
from portal.integrations.registry import providers  # noqa: E402
from portal.notifications.models import (  # noqa: E402
    Delivery,
    DeliveryState,
    Notification,
    PacingBucket,
)
from sandbox.config import RATE_LIMITS  # noqa: E402
from sandbox.slack import api as slack_api  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402

APPRISE_INTERVAL = apprise_slack.NotifySlack.request_rate_per_sec  # seconds between calls: 1.2
SLACK_BUCKETS = [k for k in RATE_LIMITS if k.startswith("slack:")]
WORKSPACE_BUCKET = "slack:chat.postMessage:workspace"
#: The run's window scale, for overrides given in real seconds (the sandbox scales them too).
SCALE = [1.0]


class AppriseCounter:
    """Stands in for the ``requests`` module inside Apprise's Slack plugin, counting answers."""

    def __init__(self) -> None:
        self.calls = 0
        self.limited = 0
        self.statuses: dict[int, int] = {}
        self.module = types.SimpleNamespace(
            request=self.request,
            codes=requests.codes,
            RequestException=requests.RequestException,
            post=requests.post,
            get=requests.get,
        )

    def request(self, method: str, url: str, *, timeout: Any, **kwargs: Any) -> requests.Response:
        response = requests.request(method, url, timeout=timeout, **kwargs)  # Apprise's timeout
        self.calls += 1
        self.limited += response.status_code == 429
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response


def accept_attachments() -> None:
    """Slack accepts ``attachments`` alone as a message's content; let the sandbox do so too."""
    spec = slack_api.METHODS["chat.postMessage"]
    handler = spec.handler

    def post_message(call: Any) -> Any:
        if not call.args.get("text") and not call.args.get("blocks"):
            attachments = call.args.get("attachments") or []
            if isinstance(attachments, str):
                attachments = json.loads(attachments)
            parts = [str(a.get(k) or "") for a in attachments for k in ("title", "text")]
            call.args["text"] = "\n".join(p for p in parts if p)
        return handler(call)

    slack_api.METHODS["chat.postMessage"] = dataclasses.replace(spec, handler=post_message)


def received(box: Any) -> int:
    return len(box.control("GET", "/_control/messages?provider=slack"))


def connect(app: Any, box: Any) -> dict[int, tuple[int, int]]:
    """Bot token from the sandbox, integration row, users.list sync, e-mail auto-link."""
    with app.app_context():
        token = install_token(box, app.config["PUBLIC_BASE_URL"])
        organization_id = db.session.scalar(select(Organization.id))
        integration = Integration(
            organization_id=organization_id,
            provider="slack",
            state=IntegrationState.CONNECTED,
            external_id=TEAM,
            display_name="ベンチ株式会社",
            config={"team_id": TEAM},
        )
        db.session.add(integration)
        db.session.flush()
        integration.set_secrets({"access_token": token["access_token"]})
        run = DirectorySync(organization_id=organization_id, integration_id=integration.id)
        db.session.add(run)
        db.session.commit()
        directory.run_sync(run.id)
        linking.apply_email_matches(integration, actor=None)
        rows = db.session.execute(
            select(AccountLink.user_id, AccountLink.chat_account_id).where(
                AccountLink.integration_id == integration.id
            )
        ).all()
        return {user: (integration.id, account) for user, account in rows}


def dms_of(app: Any) -> tuple[str, list[tuple[str, str, str]]]:
    """The bot token and the queued DMs as (Slack user id, title, body), in queue order."""
    with app.app_context():
        integration = db.session.scalars(select(Integration)).one()
        token = str(integration.get_secrets()["access_token"])
        rows = db.session.execute(
            select(ChatAccount.external_id, Notification.title, Notification.body)
            .join(Delivery, Delivery.chat_account_id == ChatAccount.id)
            .join(Notification, Notification.id == Delivery.notification_id)
            .order_by(Delivery.id)
        ).all()
        return token, [tuple(row) for row in rows]  # type: ignore[misc]


def learned_limit(app: Any) -> float | None:
    """The workspace budget's learned limit (messages per window), from its row."""
    with app.app_context():
        row = db.session.get(PacingBucket, f"slack:{TEAM}")
        return None if row is None else (row.learned or {}).get("limit")


def portal_part(
    app: Any,
    count: int,
    timing: tuple[float, float],
    deadline: float,
    processes: int,
    watch: Callable[[int, float, CallCounter], None] | None = None,
) -> dict[str, Any]:
    """Send the queued DMs with the dispatcher in ``processes`` worker processes; ``timing``
    is the provider's start rate and workspace window, scaled like the sandbox; ``watch(sent,
    seconds, counter)`` runs every 0.1 s in a thread of its own while they go."""
    provider = providers._providers["slack"]
    # Instance attributes, this process only: the class keeps Slack's real figures.
    provider.rate_per_second, provider.workspace_window = timing  # type: ignore[attr-defined]
    counter = CallCounter()
    started = time.monotonic()
    done = threading.Event()

    def watching() -> None:  # beside the dispatcher: one pass may take the whole run
        assert watch is not None
        with app.app_context():
            while not done.wait(0.1):
                sent = db.session.scalar(
                    select(db.func.count()).where(Delivery.state == DeliveryState.SENT)
                )
                db.session.rollback()
                watch(int(sent or 0), time.monotonic() - started, counter)

    watcher = threading.Thread(target=watching, daemon=True)
    try:
        with counter.installed(slack, "call_slack"):
            elapsed = drain(
                app, count, processes, "slack", deadline, watcher.start if watch else None
            )
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
        del provider.rate_per_second, provider.workspace_window  # type: ignore[attr-defined]
    return {**portal_figures(app, elapsed, counter), "learned_limit_per_window": learned_limit(app)}


def apprise_part(
    box: Any, token: str, dms: list[tuple[str, str, str]], interval: float, deadline: float
) -> dict[str, Any]:
    """One plugin instance, the target swapped per DM (each DM has its own text). Apprise
    sends one DM per ``interval`` whatever the limits, so a sample of the DMs gives its rate."""
    plugin = Apprise.instantiate(f"slack://{token}/+{dms[0][0]}?format=text")
    assert plugin is not None and plugin.mode is apprise_slack.SlackMode.BOT
    plugin.verify_certificate = box.ca_bundle  # the sandbox CA, for Apprise's requests only
    plugin.request_rate_per_sec = interval
    counter = AppriseCounter()
    original_url, original_requests = apprise_slack.NotifySlack.api_url, apprise_slack.requests
    apprise_slack.NotifySlack.api_url = f"{box.https_url}/slack/api/{{}}"
    apprise_slack.requests = counter.module  # type: ignore[assignment]
    ok = failed = 0
    started = time.monotonic()
    try:
        for user_id, title, body in dms:
            plugin.channels = [f"+{user_id}"]
            if plugin.notify(body=body, title=title):
                ok += 1
            else:
                failed += 1
            if time.monotonic() - started > deadline:
                break
    finally:
        apprise_slack.NotifySlack.api_url = original_url
        apprise_slack.requests = original_requests  # type: ignore[assignment]
    elapsed = time.monotonic() - started
    return {
        "sent": ok,
        "failed": failed,
        "seconds": round(elapsed, 2),
        "per_second": round(ok / elapsed, 2),
        "api_calls": counter.calls,
        "answered_429": counter.limited,
        "statuses": counter.statuses,
    }


def setup(tmp: Path, name: str, box: Any, args: Any) -> tuple[Any, int]:
    """A fresh portal database with the workspace connected and ``args.dms`` DMs queued."""
    app = build(
        f"sqlite:///{tmp / (name + '.sqlite3')}",
        box.smtp_port,
        {
            "DELIVERY_CONCURRENCY": args.concurrency,
            "PROVIDER_CA_BUNDLE": box.ca_bundle,
            **sandbox_urls(box.http_url, box.https_url),
        },
    )
    for logger in ("werkzeug", "apprise"):
        logging.getLogger(logger).setLevel(logging.ERROR)  # 1,000s of lines otherwise
    links = connect(app, box)
    queue(app, args.dms, "slack", links)
    return app, len(links)


def measured_portal(
    box: Any, app: Any, args: Any, timing: tuple[float, float], processes: int = 1, **kw: Any
) -> Any:
    box.state.limiter.reset()
    before, calls = received(box), counts(box)
    portal = portal_part(app, args.dms, timing, args.deadline, processes, **kw)
    portal["sandbox_received"] = received(box) - before
    portal["lost"] = args.dms - portal["sandbox_received"]
    portal["sandbox_calls"] = diff(calls, counts(box))
    return portal


def pair(
    tmp: Path,
    name: str,
    box: Any,
    args: Any,
    timing: tuple[float, float],
    interval: float,
    processes: int = 1,
) -> dict[str, Any]:
    """Portal then Apprise, same DMs, fresh rate-limit counters for each."""
    app, linked = setup(tmp, name, box, args)
    token, dms = dms_of(app)
    portal = measured_portal(box, app, args, timing, processes)
    box.state.limiter.reset()
    before, calls = received(box), counts(box)
    sample = dms[: args.apprise_dms or len(dms)]
    peer = apprise_part(box, token, sample, interval, args.deadline)
    peer["sandbox_received"] = received(box) - before
    peer["sandbox_calls"] = diff(calls, counts(box))
    return {
        "portal": portal,
        "apprise": peer,
        "ratio": round(portal["per_second"] / peer["per_second"], 2) if peer["sent"] else None,
        "linked_members": linked,
    }


def workspace_limit(box: Any) -> tuple[int, float]:
    """The sandbox's workspace rule for chat.postMessage now: (messages, window seconds)."""
    (limit, window), *_ = box.state.settings.rate_rules(WORKSPACE_BUCKET)
    return limit, window


def halved(tmp: Path, box: Any, args: Any, timing: tuple[float, float]) -> dict[str, Any]:
    """A broadcast during which the sandbox's workspace limit is halved (control API) once half
    the DMs are sent: how soon the learned limit is under the new one, and the 429s after it."""
    app, _ = setup(tmp, "halved", box, args)
    limit, window = workspace_limit(box)
    seen: dict[str, Any] = {"changed_at": None, "under_at": None}
    calls: dict[str, int] = {}

    def watch(sent: int, seconds: float, counter: CallCounter) -> None:
        if seen["changed_at"] is None and sent >= args.dms // 2:
            new = [[limit // 2, window / SCALE[0]]]  # the sandbox scales the window given
            box.configure(rate_limit_overrides={WORKSPACE_BUCKET: new})
            seen["changed_at"] = seconds
            calls.update(total_then=counter.calls, limited_then=counter.limited)
        elif seen["changed_at"] is not None and seen["under_at"] is None:
            learned = learned_limit(app)
            if learned is not None and learned <= limit // 2:
                seen["under_at"] = seconds

    try:
        portal = measured_portal(box, app, args, timing, watch=watch)
    finally:
        box.configure(rate_limit_overrides={})
    calls_after = portal["api_calls"] - calls.get("total_then", 0)
    limited_after = portal["answered_429"] - calls.get("limited_then", 0)
    recovery = (
        None if seen["under_at"] is None or seen["changed_at"] is None
        else round(seen["under_at"] - seen["changed_at"], 2)
    )  # fmt: skip
    return {
        "portal": portal,
        "limit_before": limit,
        "limit_after": limit // 2,
        "window_s": window,
        "halved_at_s": seen["changed_at"],
        "learned_under_new_limit_after_s": recovery,
        "recovery_in_windows": None if recovery is None else round(recovery / window, 2),
        "calls_after_change": calls_after,
        "answered_429_after_change": limited_after,
        "share_429_after_change": round(limited_after / max(1, calls_after), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dms", type=int, default=1000)
    parser.add_argument("--window-scale", type=float, default=1.0, help="sandbox window ×")
    parser.add_argument("--apprise-dms", type=int, default=100, help="Apprise's sample (0: all)")
    parser.add_argument("--scale", type=float, default=1000.0, help="limits × (0: skip part 3)")
    parser.add_argument("--latency-ms", type=int, default=50, help="per call, part 3 only")
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight per process")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="portal worker processes, part 3 (parts 1-2, bound by the limits, use one)",
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds per side")
    args = parser.parse_args()
    scale = SCALE[0] = args.window_scale
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        config = {"rate_window_scale": scale}
        with run_sandbox(tmp / "sandbox", config=config) as box:
            accept_attachments()
            box.control(
                "POST",
                "/_control/data/slack",
                {"count": MEMBERS, "domain": "bench.example", "match_ratio": 1.0,
                 "team_id": TEAM, "seed": 1},
            )  # fmt: skip
            # The portal's own time constants compressed like the sandbox's windows.
            timing = (SlackProvider.rate_per_second / scale, SlackProvider.workspace_window * scale)
            limit, window = workspace_limit(box)
            limits = pair(tmp, "limits", box, args, timing, APPRISE_INTERVAL * scale)
            for side in ("portal", "apprise"):
                limits[side]["real_time_s"] = round(limits[side]["seconds"] / scale, 1)
            limits["fraction_of_workspace_limit"] = round(
                limits["portal"]["per_second"] / (limit / window), 3
            )
            limits["settings"] = {
                "rate_window_scale": scale,
                "rules": {k: box.state.settings.rate_rules(k) for k in SLACK_BUCKETS},
                "portal_start_rate_per_s": timing[0],
                "portal_workspace_window_s": timing[1],
                "portal_burst": SlackProvider.burst,
                "apprise_interval_s": APPRISE_INTERVAL * scale,
                "apprise_sample": limits["apprise"]["sent"] + limits["apprise"]["failed"],
                "concurrency": args.concurrency,
                "processes": 1,
            }
            figures: dict[str, Any] = {"dms": args.dms, "at_slack_limits": limits}
            figures["limit_halved"] = halved(tmp, box, args, timing)
            if args.scale:
                box.configure(rate_limit_scale=args.scale, latency_ms=args.latency_ms)
                rate = SlackProvider.rate_per_second * args.scale / scale
                interval = APPRISE_INTERVAL * scale / args.scale
                latency = pair(
                    tmp, "latency", box, args, (rate, timing[1]), interval, args.processes
                )
                latency["settings"] = {
                    "rate_limit_scale": args.scale,
                    "rate_window_scale": scale,
                    "latency_ms": args.latency_ms,
                    "portal_start_rate_per_s": rate,
                    "apprise_interval_s": interval,
                    "concurrency": args.concurrency,
                    "processes": args.processes,
                }
                figures["latency_bound"] = latency
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
