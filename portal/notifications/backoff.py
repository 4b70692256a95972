"""When to try again: capped exponential backoff with full jitter, ``Retry-After`` as a floor.

delay = random(0, min(cap, base · 2^(attempt-1))), and never earlier than the provider's
``Retry-After`` (seconds, fractional seconds, or an HTTP date; anything else is ignored and the
normal backoff applies). AWS Builders' Library "Timeouts, retries and backoff with jitter";
RFC 9110 §10.2.3.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_SECONDS = 5.0
CAP_SECONDS = 3600.0
#: Attempts before a delivery is dead (DL-08). Rate-limit waits do not count as attempts.
MAX_ATTEMPTS = 10
#: Longest a provider may make us wait in one go; a larger Retry-After is treated as this.
MAX_RETRY_AFTER = 6 * 3600.0


def parse_retry_after(value: str | float | int | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or unparseable."""
    if value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0 if seconds == seconds else None
    return min(seconds, MAX_RETRY_AFTER)


def retry_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next attempt after ``attempt`` attempts (1-based)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delay = (rng or random).uniform(0, ceiling)
    return max(delay, retry_after or 0.0)
