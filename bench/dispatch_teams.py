"""Teams part of the dispatch benchmark: 1,000 proactive DMs, the portal against a plain loop.

A sandbox tenant of 1,000 users and an organization of 1,000 members linked to them the real
way (Graph ``/users`` sync, e-mail auto-link), then the Teams app installed for everyone by
``installs.run_install`` (``POST installedApps``, the installation, its chat), so each linked
account holds a conversation id and the Bot Connector's service URL: a proactive DM is
possible. The setup runs with the sandbox's limits off and no latency: it is not measured
(``bench/reach.py`` measures the install); the link notices the auto-link queued are dropped.
Then, in the same run, the same DMs to the same distinct members, the same activities (the
notification's Adaptive Card):

- **portal**: N Teams deliveries queued and sent by ``dispatcher.run_due()`` in this process
  (the code the worker runs) through ``TeamsProvider``: paced by the tenant's bucket
  (``TENANT_RATE`` / ``TENANT_BURST``) and each conversation's, ``POST
  v3/conversations/{id}/activities``, 429 → rescheduled, the tenant's bucket blocked;
- **sequential**: a plain ``requests`` loop, one DM after another: a Bot Framework token from
  the sandbox's token endpoint (client credentials, as msal asks for the portal), then each
  activity POSTed to the same URL, sleeping ``Retry-After`` on a 429 and trying again. Like
  the portal's Teams client it calls ``requests.post`` per DM (no session).

Both are timed; 429s are counted on the client side (the portal's around
``TeamsClient.connector``), receipts with the control API
(``GET /_control/messages?provider=microsoft``), calls per operation with
``GET /_control/requests``, and the CPU seconds of this process (the sandbox's threads
included: one per wall second is the interpreter lock's ceiling). ``ratio`` is portal
throughput ÷ the loop's; ``fraction_of_tenant_limit`` is the portal's ÷ the sandbox's
effective per-tenant limit (``microsoft:botconnector:tenant``, 30 per 1 s, read from its
settings; target ≥ 0.9, with < 1 % of calls answered 429). Per conversation the sandbox
allows 7/1 s, 8/2 s, 60/30 s and 1,800/h: with one DM per member only the tenant's binds.

Limits at their real size by default (1,000 DMs take under a minute); ``--window-scale``
shortens every window and the portal's budgets with it. ``--tenant-rate`` /
``--tenant-burst`` try other tenant budgets in this process only. Second part (``--scale``,
default 1000): every limit ×1000 (the portal's budgets too) and ``--latency-ms`` per call,
so latency binds instead of the limits.

    .venv/bin/python bench/dispatch_teams.py [--dms 1000] [--scale 1000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from autolink import counts, diff  # noqa: E402
from calls import CallCounter, portal_figures  # noqa: E402
from dispatch import MEMBERS, build, queue, sent_stats  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402

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
from portal.integrations.providers import teams  # noqa: E402
from portal.integrations.providers.teams import client as teams_client  # noqa: E402
from portal.integrations.providers.teams import installs  # noqa: E402
from portal.integrations.providers.teams.tokens import BOT_SCOPE, TIMEOUT  # noqa: E402
from portal.integrations.registry import providers  # noqa: E402
from portal.notifications import actions, dispatcher  # noqa: E402
from portal.notifications.models import Delivery, Notification  # noqa: E402
from portal.tasks import huey  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402

TENANT = "3c9e5b1a-7d2f-4e8a-b6c4-1f0e9d8c7b6a"
TENANT_BUCKET = "microsoft:botconnector:tenant"
CONVERSATION_BUCKET = "microsoft:botconnector:conversation"
#: The setup's installer, with the sandbox's limits off: as fast as the two processes go.
SETUP_INSTALL_RATE, SETUP_WORKERS = 10_000.0, 32


@contextlib.contextmanager
def portal_budgets(rate: float, burst: int, conversation_rate: float) -> Iterator[None]:
    """The Teams provider's budgets set to these in this process only (module constants read
    at each send), restored afterwards."""
    saved = teams.TENANT_RATE, teams.TENANT_BURST, teams.CONVERSATION_RATE
    teams.TENANT_RATE, teams.TENANT_BURST, teams.CONVERSATION_RATE = rate, burst, conversation_rate
    try:
        yield
    finally:
        teams.TENANT_RATE, teams.TENANT_BURST, teams.CONVERSATION_RATE = saved


def received(box: Any) -> int:
    return len(box.control("GET", "/_control/messages?provider=microsoft"))


def per_second_limit(rules: list[tuple[int, float]]) -> float:
    """The sustained rate a bucket's rules allow: the tightest limit ÷ window."""
    return min(limit / window for limit, window in rules)


def connect(app: Any, box: Any) -> dict[int, tuple[int, int]]:
    """Integration row, Graph /users sync with e-mail auto-link, the app installed for every
    linked member (their chat becomes the conversation): user id → (integration, account)."""
    with app.app_context():
        organization_id = db.session.scalar(select(Organization.id))
        integration = Integration(
            organization_id=organization_id,
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
        run = installs.start_install(integration, None)
        db.session.refresh(run)
        assert run.state.value == "done", (run.state, run.error)
        # The auto-link told every member (a Teams DM and an e-mail each, link_notice): real,
        # but not what is measured, and the dispatcher would send them with the DMs.
        db.session.execute(delete(Delivery))
        db.session.execute(delete(Notification))
        db.session.commit()
        rows = db.session.execute(
            select(AccountLink.user_id, AccountLink.chat_account_id, ChatAccount.extra)
            .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
            .where(AccountLink.integration_id == integration.id)
        ).all()
        return {
            user: (integration.id, account)
            for user, account, extra in rows
            if (extra or {}).get("conversation_id")
        }


def activities_of(app: Any) -> list[tuple[str, dict[str, Any]]]:
    """The queued DMs as (activities URL, activity), in queue order: the message the
    dispatcher builds for each delivery, rendered by the Teams client."""
    provider = providers.get("teams")
    assert provider is not None
    with app.app_context():
        rows = db.session.execute(
            select(Notification, User, Integration, ChatAccount)
            .select_from(Delivery)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(User, User.id == Notification.recipient_id)
            .join(Integration, Integration.id == Delivery.integration_id)
            .join(ChatAccount, ChatAccount.id == Delivery.chat_account_id)
            .order_by(Delivery.id)
        ).all()
        found = []
        for notification, recipient, integration, account in rows:
            link = actions.link_of(integration, recipient)
            message = actions.message_for(
                notification, recipient, provider, integration, account, link=link
            )
            extra = account.extra or {}
            url = (
                f"{str(extra['service_url']).rstrip('/')}/v3/conversations/"
                f"{quote(str(extra['conversation_id']), safe=':@')}/activities"
            )
            found.append((url, teams_client.render_message(message)))
        db.session.rollback()
        return found


def portal_part(app: Any, count: int, deadline: float) -> dict[str, Any]:
    counter = CallCounter()
    with counter.installed(teams_client.TeamsClient, "connector"):
        started, cpu = time.monotonic(), time.process_time()
        with app.app_context():
            while True:
                dispatcher.run_due()
                sent, _ = sent_stats(app)
                if sent >= count or time.monotonic() - started > deadline:
                    break
                time.sleep(0.05)
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    return {**portal_figures(app, elapsed, counter), "process_cpu_s": round(cpu, 2)}


def bot_token(app: Any, box: Any) -> str:
    """A Bot Framework token from the sandbox: client credentials for ``botframework.com``."""
    config = app.config
    response = requests.post(
        f"{str(config['MS_LOGIN_URL']).rstrip('/')}/botframework.com/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": config["MS_APP_ID"],
            "client_secret": config["MS_CLIENT_SECRET"],
            "scope": BOT_SCOPE,
        },
        timeout=TIMEOUT,
        verify=box.ca_bundle,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def sequential_part(
    app: Any, box: Any, dms: list[tuple[str, dict[str, Any]]], deadline: float
) -> dict[str, Any]:
    """One DM after another; a 429 is slept through (its Retry-After) and the DM sent again."""
    calls = limited = sent = failed = 0
    statuses: dict[int, int] = {}
    started, cpu = time.monotonic(), time.process_time()
    headers = {"Authorization": f"Bearer {bot_token(app, box)}"}
    for url, activity in dms:
        while time.monotonic() - started <= deadline:
            response = requests.post(
                url, json=activity, headers=headers, timeout=TIMEOUT, verify=box.ca_bundle
            )
            calls += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code != 429:
                sent += response.ok
                failed += not response.ok
                break
            limited += 1
            time.sleep(float(response.headers.get("Retry-After") or 1))
        else:
            break
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    return {
        "sent": sent,
        "failed": failed,
        "seconds": round(elapsed, 2),
        "per_second": round(sent / elapsed, 2),
        "api_calls": calls,
        "answered_429": limited,
        "share_429": round(limited / max(1, calls), 4),
        "process_cpu_s": round(cpu, 2),
        "statuses": statuses,
    }


def pair(
    tmp: Path, name: str, box: Any, args: Any, measured: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set up a fresh organization, then the portal and the loop with the sandbox configured
    as ``measured``, fresh rate-limit counters for each: (portal, sequential)."""
    box.configure(rate_limits_enabled=False, latency_ms=0)
    app = build(
        f"sqlite:///{tmp / (name + '.sqlite3')}",
        box.smtp_port,
        {
            "DELIVERY_CONCURRENCY": args.concurrency,
            "PROVIDER_CA_BUNDLE": box.ca_bundle,
            "TEAMS_INSTALL_RATE": SETUP_INSTALL_RATE,
            "TEAMS_READ_RATE": SETUP_INSTALL_RATE,
            "TEAMS_INSTALL_WORKERS": SETUP_WORKERS,
            **sandbox_urls(box.http_url, box.https_url),
        },
    )
    links = connect(app, box)
    queue(app, args.dms, "teams", links)
    dms = activities_of(app)
    assert len(dms) == args.dms, (len(dms), args.dms)
    box.configure(rate_limits_enabled=True, **measured)
    box.state.limiter.reset()
    before, calls = received(box), counts(box)
    portal = portal_part(app, args.dms, args.deadline)
    portal["sandbox_received"] = received(box) - before
    portal["lost"] = args.dms - portal["sandbox_received"]
    portal["sandbox_calls"] = diff(calls, counts(box))
    portal["linked_members"] = len(links)
    box.state.limiter.reset()
    before, calls = received(box), counts(box)
    peer = sequential_part(app, box, dms, args.deadline)
    peer["sandbox_received"] = received(box) - before
    peer["lost"] = args.dms - peer["sandbox_received"]
    peer["sandbox_calls"] = diff(calls, counts(box))
    return portal, peer


def ratio(portal: dict[str, Any], peer: dict[str, Any]) -> float | None:
    return round(portal["per_second"] / peer["per_second"], 2) if peer["sent"] else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dms", type=int, default=1000, help=f"at most {MEMBERS}: one each")
    parser.add_argument("--window-scale", type=float, default=1.0, help="sandbox window ×")
    parser.add_argument("--scale", type=float, default=1000.0, help="limits × (0: skip part 2)")
    parser.add_argument("--latency-ms", type=int, default=50, help="per call, part 2 only")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds per side")
    parser.add_argument("--tenant-rate", type=float, default=teams.TENANT_RATE)
    parser.add_argument("--tenant-burst", type=int, default=teams.TENANT_BURST)
    args = parser.parse_args()
    if not 0 < args.dms <= MEMBERS:
        parser.error(f"--dms must be 1..{MEMBERS} (one DM per member)")
    huey.immediate = True  # the setup's sync and install run inline
    scale = args.window_scale
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        # No portal listens for the install activities: every conversation comes from Graph's
        # chat id. Without the mailbox permission the sync reads no time zones (not measured).
        config = {"post_to_portal": False, "mailbox_settings_permission": False}
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # 1,000s of lines otherwise
        with run_sandbox(tmp / "sandbox", config=config) as box:
            box.control(
                "POST",
                "/_control/data/microsoft",
                {"count": MEMBERS, "domain": "bench.example", "match_ratio": 1.0,
                 "tenant_id": TENANT, "seed": 1},
            )  # fmt: skip
            rate, burst = args.tenant_rate / scale, args.tenant_burst
            conversation_rate = teams.CONVERSATION_RATE / scale
            with portal_budgets(rate, burst, conversation_rate):
                portal, peer = pair(
                    tmp, "limits", box, args, {"rate_window_scale": scale, "latency_ms": 0}
                )
            rules = box.state.settings.rate_rules(TENANT_BUCKET)
            limit = per_second_limit(rules)
            limits: dict[str, Any] = {
                "portal": portal,
                "sequential": peer,
                "ratio": ratio(portal, peer),
                "tenant_limit_per_s": round(limit, 2),
                "fraction_of_tenant_limit": round(portal["per_second"] / limit, 3),
                "budget_fraction_of_tenant_limit": round(rate / limit, 3),
                "settings": {
                    "rate_window_scale": scale,
                    "rules": {
                        k: box.state.settings.rate_rules(k)
                        for k in (TENANT_BUCKET, CONVERSATION_BUCKET)
                    },
                    "portal_budget_per_s": rate,
                    "portal_burst": burst,
                    "portal_conversation_budget_per_s": conversation_rate,
                    "concurrency": args.concurrency,
                },
            }
            figures: dict[str, Any] = {"dms": args.dms, "at_teams_limits": limits}
            if args.scale:
                measured = {
                    "rate_window_scale": scale,
                    "rate_limit_scale": args.scale,
                    "latency_ms": args.latency_ms,
                }
                rate = args.tenant_rate * args.scale / scale
                conversation_rate = teams.CONVERSATION_RATE * args.scale / scale
                with portal_budgets(rate, burst, conversation_rate):
                    portal, peer = pair(tmp, "latency", box, args, measured)
                figures["latency_bound"] = {
                    "portal": portal,
                    "sequential": peer,
                    "ratio": ratio(portal, peer),
                    "settings": {
                        **measured,
                        "portal_budget_per_s": rate,
                        "portal_conversation_budget_per_s": conversation_rate,
                        "concurrency": args.concurrency,
                    },
                }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
