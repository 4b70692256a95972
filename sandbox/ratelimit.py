"""Sliding-window rate limiting shared by every provider stand-in."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """Outcome of one request against a bucket's rules."""

    allowed: bool
    limit: int = 0
    remaining: int = 0
    reset_at: float = 0.0  # when the tightest window frees a slot (Unix time)
    retry_after: float = 0.0  # seconds to wait when not allowed

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, as providers send in `Retry-After`."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter:
    """Counts requests per key in sliding windows; each key may have several (limit, window) rules.

    A rejected request is not counted, as with the real services: waiting `Retry-After` is enough.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._hits.clear()

    def hit(self, key: str, rules: list[tuple[int, float]], now: float | None = None) -> Decision:
        """Count one request for `key` if every rule allows it."""
        if not rules:
            return Decision(allowed=True)
        now = time.time() if now is None else now
        longest = max(window for _, window in rules)
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - longest:
                hits.popleft()
            worst: Decision | None = None
            for limit, window in rules:
                recent = [t for t in hits if t > now - window]
                if len(recent) >= limit:
                    # The slot frees when the oldest request that fills the window leaves it.
                    frees_at = recent[len(recent) - limit] + window
                    wait = frees_at - now
                    if worst is None or wait > worst.retry_after:
                        worst = Decision(False, limit, 0, frees_at, wait)
            if worst is not None:
                return worst
            hits.append(now)
            limit, window = min(rules, key=lambda rule: rule[0])
            used = sum(1 for t in hits if t > now - window)
            oldest = next(t for t in hits if t > now - window)
            return Decision(True, limit, max(0, limit - used), oldest + window)
