"""The sandbox's in-memory state: one object per app, guarded by one re-entrant lock.

Everything a test may want to inspect lives here: provider directories, issued tokens, the
messages each sandbox user received, the request log, armed faults and caught mail.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from sandbox.chatwork.models import ChatworkData
from sandbox.chatwork.seed import build_chatwork
from sandbox.config import Settings
from sandbox.mail import MailStore
from sandbox.microsoft.models import MicrosoftData
from sandbox.microsoft.seed import build_microsoft
from sandbox.ratelimit import RateLimiter
from sandbox.signing import SigningKeys
from sandbox.slack.models import SlackData
from sandbox.slack.seed import build_slack

REQUEST_LOG_SIZE = 2000
OUTBOUND_LOG_SIZE = 500


@dataclass
class IssuedToken:
    """A token the sandbox handed out; the inspector only ever shows its suffix."""

    id: int
    provider: str  # slack | chatwork | microsoft
    kind: str  # bot | access | refresh | graph | botframework
    value: str
    owner: str  # team id, Chatwork account id or tenant id
    client_id: str
    scopes: list[str]
    issued_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    pair: str | None = None  # the refresh token of an access token, and the other way round
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        """Last characters only: enough to tell tokens apart, useless to an attacker."""
        return "…" + self.value[-6:]

    def status(self, now: float | None = None) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at:
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        """JSON for the control API (the full value is included: tests need it)."""
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "value": self.value,
            "suffix": self.suffix,
            "owner": self.owner,
            "client_id": self.client_id,
            "scopes": self.scopes,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "status": self.status(),
        }


@dataclass
class LoggedRequest:
    """One line of the request log. Never holds a secret: tokens appear as a suffix only."""

    at: float
    method: str
    path: str
    operation: str
    status: int
    duration_ms: float
    token_suffix: str = ""


@dataclass
class FaultRule:
    """Answer the next `remaining` requests matching `match` with HTTP `status`."""

    match: str  # an operation prefix ("slack:chat.postMessage") or a path prefix ("/chatwork/")
    status: int
    remaining: int

    def matches(self, operation: str, path: str) -> bool:
        """True when the rule applies to this request."""
        if self.match.startswith("/"):
            return path.startswith(self.match)
        return operation.startswith(self.match)


@dataclass
class OutboundCall:
    """An event or activity the sandbox posted to the portal, with the portal's answer."""

    at: float
    kind: str
    url: str
    status: int | None
    detail: str


class SandboxState:
    """All mutable sandbox data. Handlers take `lock` while they read or change it."""

    def __init__(self, settings: Settings) -> None:
        self.lock = threading.RLock()
        self.initial_settings = copy.deepcopy(settings)
        self.settings = settings
        self.keys = SigningKeys.generate()
        self.limiter = RateLimiter()
        self.mail = MailStore()
        self._sequence = itertools.count(1)
        self.reset(keep_settings=True)

    def reset(self, keep_settings: bool = False) -> None:
        """Back to the seeded directories, no tokens, no messages, no faults."""
        with self.lock:
            if not keep_settings:
                urls = (self.settings.http_url, self.settings.https_url)
                self.settings = copy.deepcopy(self.initial_settings)
                # The bound ports do not change on reset.
                self.settings.http_url, self.settings.https_url = urls
            self.slack: SlackData = build_slack()
            self.chatwork: ChatworkData = build_chatwork()
            self.microsoft: MicrosoftData = build_microsoft()
            self.tokens: dict[str, IssuedToken] = {}
            self.requests: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
            self.request_counts: Counter[str] = Counter()
            self.faults: list[FaultRule] = []
            self.outbound: deque[OutboundCall] = deque(maxlen=OUTBOUND_LOG_SIZE)
            self.limiter.reset()
            self.mail.clear()

    def next_id(self) -> int:
        """A process-wide increasing integer (message ids, timestamps' fractions, token ids)."""
        return next(self._sequence)

    def issue_token(self, **values: Any) -> IssuedToken:
        """Record a newly issued token and return it."""
        with self.lock:
            token = IssuedToken(id=self.next_id(), issued_at=time.time(), **values)
            self.tokens[token.value] = token
            return token

    def find_token(self, value: str) -> IssuedToken | None:
        """The token record for a presented value, if the sandbox issued it."""
        with self.lock:
            return self.tokens.get(value)

    def revoke_token(self, token: IssuedToken) -> None:
        """Revoke a token (and its access/refresh pair)."""
        with self.lock:
            now = time.time()
            token.revoked_at = token.revoked_at or now
            paired = self.tokens.get(token.pair) if token.pair else None
            if paired is not None:
                paired.revoked_at = paired.revoked_at or now

    def take_fault(self, operation: str, path: str) -> int | None:
        """Consume one armed fault for this request and return its status, if any."""
        with self.lock:
            for rule in self.faults:
                if rule.remaining > 0 and rule.matches(operation, path):
                    rule.remaining -= 1
                    return rule.status
            return None

    def record_outbound(self, kind: str, url: str, status: int | None, detail: str) -> None:
        """Remember something the sandbox sent to the portal."""
        with self.lock:
            self.outbound.appendleft(OutboundCall(time.time(), kind, url, status, detail))


def current_state() -> SandboxState:
    """The state of the app handling the current request."""
    state: SandboxState = current_app.extensions["sandbox"]
    return state
