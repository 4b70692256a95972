"""Sync + e-mail auto-link at 10,000 members, against the naive users.lookupByEmail loop.

An organization of N members (default 10,000) and a sandbox Slack workspace of N users, 90% of
them with the member's e-mail. Ours: users.list pages of 1,000 (background sync) then one
auto-link transaction. Naive: one users.lookupByEmail per member. Both run in the same process
against the same sandbox over HTTPS; for each we report wall time, Slack API calls, links made,
and the time the calls would take at Slack's real tier limits (calls ÷ allowed rate: users.list
Tier 2 = 20/min, users.lookupByEmail Tier 3 = 50/min). Our sync runs with the sandbox enforcing
those limits; the naive loop runs with them switched off (it would take hours otherwise).
Prints one JSON line.

    .venv/bin/python bench/autolink.py [--members 10000] [--match 0.9]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade
from sqlalchemy import delete, func, insert, select

import demodata
from portal import create_app
from portal.accounts.models import Organization, User
from portal.config import sandbox_urls
from portal.extensions import db
from portal.integrations import directory, linking
from portal.integrations.models import AccountLink, Integration, IntegrationState, LinkMethod
from portal.integrations.providers.slack import SlackProvider
from portal.integrations.providers.slack.client import PAGE_SIZE
from portal.tasks import huey
from sandbox.config import SLACK_CLIENT_ID
from sandbox.testing import run_sandbox

KEY = "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMtb2s="
TEAM = "T0BENCH001"
TIER_PER_MINUTE = {"slack:users.list": 20, "slack:users.lookupByEmail": 50}


def counts(box: Any) -> dict[str, int]:
    return dict(box.control("GET", "/_control/requests")["counts"])


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def at_tier_limits(calls: dict[str, int]) -> float:
    """Seconds the calls need at Slack's limits (each method has its own per-minute budget)."""
    return sum(n / (TIER_PER_MINUTE.get(op, 50) / 60) for op, n in calls.items())


def install_token(box: Any, portal_url: str) -> dict[str, Any]:
    """Walk the consent page for the bench workspace and exchange the code."""
    params = {
        "client_id": SLACK_CLIENT_ID,
        "scope": "users:read,users:read.email,im:write,chat:write,incoming-webhook",
        "redirect_uri": f"{portal_url}/slack/oauth/callback",
        "state": "bench",
        "team": TEAM,
    }
    page = requests.get(f"{box.http_url}/slack/oauth/v2/authorize", params=params, timeout=10)
    channel = box.state.slack.workspaces[TEAM].channels[0][0]
    answer = requests.post(
        page.url, data={"decision": "allow", "channel": channel}, allow_redirects=False, timeout=10
    )
    code = dict(
        part.split("=", 1) for part in answer.headers["Location"].split("?", 1)[1].split("&")
    )["code"]
    return SlackProvider().exchange_code(
        code=code, redirect_uri=params["redirect_uri"], code_verifier=None
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--match", type=float, default=0.9)
    args = parser.parse_args()
    huey.immediate = True
    with tempfile.TemporaryDirectory() as tmp, run_sandbox(Path(tmp) / "sandbox") as box:
        app = create_app(
            {
                "ENV_NAME": "testing",
                "SECRET_KEY": "bench",
                "PORTAL_ENCRYPTION_KEYS": KEY,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3",
                "PROVIDER_CA_BUNDLE": box.ca_bundle,
                # The members' link notices are written here (huey inline) but sent by the
                # worker later, as in production: DMs paced at 1/s are not the sync's time.
                "DELIVERY_AUTOWAKE": False,
                **sandbox_urls(box.http_url, box.https_url),
            }
        )
        box.control(
            "POST",
            "/_control/data/slack",
            {"count": args.members, "domain": "bench.example", "match_ratio": args.match,
             "team_id": TEAM, "seed": 1},
        )  # fmt: skip
        with app.app_context():
            upgrade()
            organization = Organization(slug="bench", name="ベンチ株式会社")
            db.session.add(organization)
            db.session.flush()
            people = demodata.members(args.members, "bench.example")
            db.session.execute(
                insert(User),
                [
                    {"organization_id": organization.id, "email": p.email, "name": p.name,
                     "role": "member", "password_hash": None}
                    for p in people
                ],
            )  # fmt: skip
            token = install_token(box, app.config["PUBLIC_BASE_URL"])
            integration = Integration(
                organization_id=organization.id,
                provider="slack",
                state=IntegrationState.CONNECTED,
                external_id=TEAM,
                display_name="ベンチ株式会社",
                config={},
            )
            db.session.add(integration)
            db.session.flush()
            integration.set_secrets({"access_token": token["access_token"]})
            db.session.commit()

            # Ours: background sync (paged users.list, real tier limits on), which links every
            # unique match as one batch in one transaction.
            before = counts(box)
            started = time.perf_counter()
            run = directory.start_sync(integration, None)
            db.session.refresh(run)
            linked = run.auto_linked
            ours_wall = time.perf_counter() - started
            ours_calls = diff(before, counts(box))
            assert run.state.value == "done", run.error

            # The admin undoes that batch: one transaction, bulk statements. Like the sync's, its
            # time includes writing every member's notice inline (huey immediate mode), which
            # the worker does after the request in production.
            admin = User(
                organization_id=organization.id, email="admin@bench.example", name="管理者",
                role="admin",
            )  # fmt: skip
            db.session.add(admin)
            db.session.commit()
            batch = linking.latest_automatic_batch(integration)
            assert batch is not None
            started = time.perf_counter()
            undone = linking.undo_batch(integration, batch.id, actor=admin)
            undo_wall = time.perf_counter() - started

            # Naive: one users.lookupByEmail per member (limits off, or it would take hours).
            db.session.execute(delete(AccountLink))
            db.session.commit()
            box.configure(rate_limits_enabled=False)
            client = SlackProvider().client(integration)
            accounts = dict(
                db.session.execute(
                    select(linking.ChatAccount.external_id, linking.ChatAccount.id).where(
                        linking.ChatAccount.integration_id == integration.id
                    )
                ).all()
            )
            members = db.session.execute(
                select(User.id, User.email).where(User.organization_id == organization.id)
            ).all()
            before = counts(box)
            started = time.perf_counter()
            rows = []
            for user_id, email in members:
                found = client.lookup_by_email(email)
                if found is not None and found.external_id in accounts:
                    rows.append(
                        {"organization_id": organization.id, "integration_id": integration.id,
                         "user_id": user_id, "chat_account_id": accounts[found.external_id],
                         "method": LinkMethod.EMAIL}
                    )  # fmt: skip
            if rows:
                db.session.execute(AccountLink.__table__.insert(), rows)
            db.session.commit()
            naive_wall = time.perf_counter() - started
            naive_calls = diff(before, counts(box))
            naive_linked = db.session.scalar(select(func.count()).select_from(AccountLink))

    ours_total = sum(ours_calls.values())
    naive_total = sum(naive_calls.values())
    ours_limit = at_tier_limits(ours_calls)
    naive_limit = at_tier_limits(naive_calls)
    target_calls = math.ceil(args.members / PAGE_SIZE) + 5
    print(
        json.dumps(
            {
                "members": args.members,
                "match_ratio": args.match,
                "ours": {
                    "wall_s": round(ours_wall, 2),
                    "api_calls": ours_total,
                    "calls_by_method": ours_calls,
                    "linked": linked,
                    "at_tier_limits_s": round(ours_limit, 1),
                    "undo_s": round(undo_wall, 2),
                    "undone": undone,
                },
                "naive_lookup_by_email": {
                    "wall_s": round(naive_wall, 2),
                    "api_calls": naive_total,
                    "calls_by_method": naive_calls,
                    "linked": naive_linked,
                    "at_tier_limits_s": round(naive_limit, 1),
                },
                "target_api_calls": target_calls,
                "api_calls_ok": ours_total <= target_calls,
                "speedup_at_tier_limits": round(naive_limit / ours_limit, 1),
                "speedup_ok": naive_limit / ours_limit >= 50,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
