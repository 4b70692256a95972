"""A webhook receiver, so `make run` and the tests can watch the portal's outbound webhooks.

Point an endpoint at ``<sandbox>/hooks/<name>`` (any name). Every request is kept (the newest
500 in full, counts for all), with whether its Standard Webhooks signature verifies when the
receiver was given the endpoint's secret. Switches make it answer like a receiver in trouble:

  GET  /_control/webhooks                    {"received", "unique", "duplicates", "by_status",
                                             "recent": [...], "settings": {...}}
  POST /_control/webhooks                    {"status": 200|410|500…, "delay_ms": 50,
                                             "fail_ratio": 0.2, "secret": "whsec_…"} (partial)
  POST /_control/webhooks/reset              forget what arrived, back to answering 200

``fail_ratio`` fails that share of requests with 500, spread evenly (every fifth for 0.2), so a
benchmark's failures are the same on every run. The page ``/inspector/webhooks`` shows the same
and has buttons for the switches.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.wrappers import Response as WerkzeugResponse

bp = Blueprint("webhook_receiver", __name__)

KEPT = 500


@dataclass
class Received:
    number: int
    at: float
    name: str
    headers: dict[str, str]
    body: str
    status: int
    verified: bool | None


@dataclass
class Inbox:
    lock: threading.Lock = field(default_factory=threading.Lock)
    status: int = 200
    delay_ms: int = 0
    fail_ratio: float = 0.0
    secret: str | None = None
    count: int = 0
    ids: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    recent: deque[Received] = field(default_factory=lambda: deque(maxlen=KEPT))

    def settings(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "delay_ms": self.delay_ms,
            "fail_ratio": self.fail_ratio,
            "secret_set": self.secret is not None,
        }

    def answer_for(self, number: int) -> int:
        """The status for the ``number``-th request: the switch, or an evenly spread 500."""
        if self.status != 200:
            return self.status
        # Request n fails when floor(n·r) moved since n-1: exactly r of them, spread out.
        if int(number * self.fail_ratio) != int((number - 1) * self.fail_ratio):
            return 500
        return 200


def init_app(app: Flask) -> None:
    app.extensions["webhook_inbox"] = Inbox()
    app.register_blueprint(bp)


def _inbox() -> Inbox:
    return current_app.extensions["webhook_inbox"]  # type: ignore[no-any-return]


def _verify(secret: str | None, headers: dict[str, str], body: str) -> bool | None:
    if not secret:
        return None
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError, TypeError):
        return False
    return True


@bp.post("/hooks/<name>")
def receive(name: str) -> tuple[Response, int]:
    inbox = _inbox()
    body = request.get_data(as_text=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    with inbox.lock:
        inbox.count += 1
        number = inbox.count
        status = inbox.answer_for(number)
        delay = inbox.delay_ms
        secret = inbox.secret
    if delay:
        time.sleep(delay / 1000)
    verified = _verify(secret, headers, body)
    with inbox.lock:
        if status < 300:  # what the receiver accepted, i.e. processed
            inbox.ids[headers.get("webhook-id", "")] += 1
        inbox.by_status[status] += 1
        inbox.recent.appendleft(
            Received(number, time.time(), name, headers, body[:20_000], status, verified)
        )
    return jsonify({"ok": status < 300, "received": number}), status


def summary() -> dict[str, Any]:
    inbox = _inbox()
    with inbox.lock:
        unique = len(inbox.ids)
        return {
            "received": inbox.count,
            "accepted": sum(inbox.ids.values()),
            "unique": unique,
            "duplicates": sum(n - 1 for n in inbox.ids.values() if n > 1),
            "by_status": {str(k): v for k, v in inbox.by_status.items()},
            "settings": inbox.settings(),
            "recent": [
                {
                    "number": r.number,
                    "name": r.name,
                    "webhook_id": r.headers.get("webhook-id"),
                    "type": _type_of(r.body),
                    "status": r.status,
                    "verified": r.verified,
                    "headers": {k: v for k, v in r.headers.items() if k.startswith("webhook-")},
                    "body": r.body,
                }
                for r in list(inbox.recent)[:100]
            ],
        }


def _type_of(body: str) -> str | None:
    marker = '"type":"'
    start = body.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return body[start : body.find('"', start)]


def configure(values: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial settings change; ValueError names a bad field."""
    inbox = _inbox()
    with inbox.lock:
        if "status" in values:
            status = values["status"]
            if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status < 600:
                raise ValueError("status must be an HTTP status from 200 to 599")
            inbox.status = status
        if "delay_ms" in values:
            delay = values["delay_ms"]
            if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 60_000:
                raise ValueError("delay_ms must be 0–60000")
            inbox.delay_ms = delay
        if "fail_ratio" in values:
            ratio = values["fail_ratio"]
            if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
                raise ValueError("fail_ratio must be from 0 to 1")
            inbox.fail_ratio = float(ratio)
        if "secret" in values:
            secret = values["secret"]
            if secret is not None and (
                not isinstance(secret, str) or not secret.startswith("whsec_")
            ):
                raise ValueError("secret must be a whsec_… string or null")
            inbox.secret = secret or None
        return inbox.settings()


def reset() -> None:
    inbox = _inbox()
    with inbox.lock:
        inbox.count = 0
        inbox.ids.clear()
        inbox.by_status.clear()
        inbox.recent.clear()
        inbox.status, inbox.delay_ms, inbox.fail_ratio, inbox.secret = 200, 0, 0.0, None


@bp.get("/_control/webhooks")
def control_read() -> Response:
    return jsonify(summary())


@bp.post("/_control/webhooks")
def control_configure() -> tuple[Response, int] | Response:
    values = request.get_json(silent=True)
    if not isinstance(values, dict):
        return jsonify({"error": "send a JSON object"}), 400
    try:
        return jsonify(configure(values))
    except ValueError as problem:
        return jsonify({"error": str(problem)}), 400


@bp.post("/_control/webhooks/reset")
def control_reset() -> Response:
    reset()
    return jsonify({"ok": True})


MODES: dict[str, tuple[dict[str, Any], str]] = {
    "ok": ({"status": 200, "delay_ms": 0, "fail_ratio": 0.0}, "正常に受け取る (200)"),
    "fail": ({"status": 500}, "エラーを返す (500)"),
    "gone": ({"status": 410}, "もう受け取らない (410 Gone)"),
    "slow": ({"status": 200, "delay_ms": 20_000}, "遅く返す (20秒: タイムアウト)"),
    "flaky": ({"status": 200, "fail_ratio": 0.2}, "5回に1回失敗する"),
}


@bp.get("/inspector/webhooks")
def page() -> str:
    return render_template("webhooks.html", data=summary(), modes=MODES)


@bp.post("/inspector/webhooks/mode")
def set_mode() -> WerkzeugResponse:
    mode = MODES.get(request.form.get("mode", ""))
    if mode is not None:
        configure(mode[0])
    return redirect(url_for(".page"))


@bp.post("/inspector/webhooks/secret")
def set_secret() -> WerkzeugResponse:
    secret = request.form.get("secret", "").strip()
    with contextlib.suppress(ValueError):  # the page shows whether a secret is set
        configure({"secret": secret or None})
    return redirect(url_for(".page"))


@bp.post("/inspector/webhooks/reset")
def clear() -> WerkzeugResponse:
    reset()
    return redirect(url_for(".page"))
