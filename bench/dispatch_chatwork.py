"""Chatwork part of the dispatch benchmark: 1,000 DMs against the sandbox's real rate limit.

The sandbox enforces Chatwork's 300 requests / 5 minutes per token, time-scaled with its
``rate_window_scale`` (default 0.02: 300 requests per 6 s); the portal is told the same window
(``CHATWORK_RATE_WINDOW``), so its pacing budget scales with it. The whole real path runs:
OAuth tokens from the sandbox, contacts read with ``GET /contacts``, deliveries sent by the
dispatcher through ``ChatworkProvider`` (form-encoded ``POST /rooms/{id}/messages``).

Prints one JSON line: throughput as a fraction of the limit (target ≥ 0.9), lost deliveries
(target 0), the share of calls answered 429 (target < 1 %), and what the sandbox received.

    .venv/bin/python bench/dispatch_chatwork.py [--dms 1000] [--window-scale 0.02]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from calls import CallCounter  # noqa: E402
from dispatch import build, queue, sent_stats  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from portal.accounts.models import Organization, User  # noqa: E402
from portal.config import sandbox_urls  # noqa: E402
from portal.database import utcnow  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.integrations import directory  # noqa: E402
from portal.integrations.models import (  # noqa: E402
    AccountLink,
    ChatAccount,
    DirectorySync,
    Integration,
    IntegrationState,
    LinkMethod,
)
from portal.integrations.providers.chatwork import client as chatwork  # noqa: E402
from portal.integrations.providers.chatwork.setup import SCOPES  # noqa: E402
from portal.notifications import dispatcher  # noqa: E402
from sandbox.testing import run_sandbox  # noqa: E402

REDIRECT = "http://127.0.0.1:5000/chatwork/oauth/callback"


def authorize(box: Any, client: dict[str, Any], account_id: int) -> str:
    """The consent page answered as the notification account: return the code and verifier."""
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "scope": " ".join(SCOPES),
        "state": "bench",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    answer = requests.post(
        f"{box.http_url}/chatwork/www/packages/oauth2/login.php",
        data={**params, "decision": "allow", "account_id": str(account_id)},
        allow_redirects=False,
        timeout=10,
    )
    code = requests.utils.urlparse(answer.headers["Location"]).query
    found = dict(part.split("=", 1) for part in code.split("&"))["code"]
    return f"{found} {verifier}"


def connect(app: Any, box: Any, account_id: int) -> dict[int, tuple[int, int]]:
    """Tokens, the integration row, the contacts (GET /contacts) and one link per member."""
    client = box.control("POST", "/_control/chatwork/clients", {"redirect_uris": [REDIRECT]})
    code, verifier = authorize(box, client, account_id).split(" ")
    with app.app_context():
        token = chatwork.token_request(
            client["client_id"],
            client["client_secret"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
        )
        organization_id = db.session.scalar(select(Organization.id))
        integration = Integration(
            organization_id=organization_id,
            provider="chatwork",
            state=IntegrationState.CONNECTED,
            external_id=str(account_id),
            display_name="Wistant通知用",
            config={"client_id": client["client_id"]},
        )
        db.session.add(integration)
        db.session.flush()
        integration.set_secrets(
            {
                "client_secret": client["client_secret"],
                "access_token": token["access_token"],
                "refresh_token": token["refresh_token"],
            }
        )
        integration.token_expires_at = chatwork.parse_expiry(token)
        run = DirectorySync(organization_id=organization_id, integration_id=integration.id)
        db.session.add(run)
        db.session.commit()
        directory.run_sync(run.id)
        mail = {str(a.account_id): a.mail for a in box.state.chatwork.accounts.values()}
        users = {u.email: u.id for u in db.session.scalars(select(User))}
        accounts = db.session.execute(
            select(ChatAccount.id, ChatAccount.external_id).where(
                ChatAccount.integration_id == integration.id
            )
        ).all()
        pairs = [(users[mail[ext]], aid) for aid, ext in accounts if mail.get(ext) in users]
        db.session.execute(
            insert(AccountLink),
            [
                {
                    "organization_id": organization_id,
                    "integration_id": integration.id,
                    "user_id": user_id,
                    "chat_account_id": chat_account_id,
                    "method": LinkMethod.MANUAL,
                    "created_at": utcnow(),
                }
                for user_id, chat_account_id in pairs
            ],
        )
        db.session.commit()
        return {user_id: (integration.id, account) for user_id, account in pairs}


def drain(app: Any, count: int, deadline_s: float) -> tuple[int, float]:
    """Run the dispatcher until ``count`` deliveries are sent (or the deadline): the number
    sent and the seconds it took."""
    started = time.monotonic()
    with app.app_context():
        while time.monotonic() < started + deadline_s:
            dispatcher.run_due()
            if sent_stats(app)[0] >= count:
                break
            time.sleep(0.02)
    return sent_stats(app)[0], time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dms", type=int, default=1000)
    parser.add_argument("--window-scale", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    limit, window = 300, 300 * args.window_scale
    with tempfile.TemporaryDirectory() as folder, run_sandbox(Path(folder) / "sandbox") as box:
        tmp = Path(folder)
        box.configure(rate_window_scale=args.window_scale, chatwork_access_ttl=3600)
        account_id = box.control(
            "POST", "/_control/data/chatwork", {"count": 1000, "domain": "bench.example",
                                                "match_ratio": 1.0},
        )["account_id"]  # fmt: skip
        app = build(
            f"sqlite:///{tmp / 'chatwork.sqlite3'}",
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
        queue(app, args.dms, "chatwork", links)
        counter = CallCounter()
        time.sleep(window)  # let the sync's request leave the window: measure sends only
        with counter.installed(chatwork, "api_call"):
            sent, elapsed = drain(app, args.dms, max(60.0, 5 * args.dms * window / limit))
        received = sum(len(room.messages) for room in box.state.chatwork.rooms.values())
        per_second = sent / elapsed
        print(
            json.dumps(
                {
                    "chatwork": {
                        "dms": args.dms,
                        "sent": sent,
                        "lost": args.dms - sent,
                        "received_by_sandbox": received,
                        "seconds": round(elapsed, 2),
                        "limit": f"{limit} per {window:g} s (300 per 300 s x {args.window_scale})",
                        "per_second": round(per_second, 2),
                        "fraction_of_limit": round(per_second / (limit / window), 3),
                        "calls": counter.calls,
                        "http_429": counter.limited,
                        "share_429": counter.share_limited,
                    }
                },
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
