"""DL-04: Retry-After forms, and the backoff envelope (property-based)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from portal.notifications.backoff import (
    CAP_SECONDS,
    MAX_RETRY_AFTER,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("2.128") == 2.128  # Graph sends fractional seconds
    assert parse_retry_after(45) == 45.0
    http_date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(http_date, now=NOW) == 90.0
    assert (
        parse_retry_after(format_datetime(NOW - timedelta(seconds=5), usegmt=True), now=NOW) == 0.0
    )
    for garbage in (None, "", "soon", "-5", "nan", "1e999999", "Thu, 99 Foo 2026"):
        value = parse_retry_after(garbage, now=NOW)
        assert value is None or 0 <= value <= MAX_RETRY_AFTER


@given(st.text(max_size=60))
def test_retry_after_never_raises(value: str) -> None:
    parsed = parse_retry_after(value, now=NOW)
    assert parsed is None or 0 <= parsed <= MAX_RETRY_AFTER


@given(
    attempt=st.integers(min_value=1, max_value=40),
    retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=MAX_RETRY_AFTER)),
    seed=st.integers(),
)
def test_delay_within_envelope_and_never_before_retry_after(
    attempt: int, retry_after: float | None, seed: int
) -> None:
    delay = retry_delay(attempt, retry_after, rng=random.Random(seed))
    ceiling = min(CAP_SECONDS, 5.0 * 2 ** (attempt - 1))
    assert delay >= (retry_after or 0)
    assert delay <= max(ceiling, retry_after or 0)


def test_full_jitter_spreads_retries() -> None:
    """No attempt storm at recovery: 1,000 rows failing together retry over the whole window."""
    rng = random.Random(7)
    delays = sorted(retry_delay(6, rng=rng) for _ in range(1000))
    assert delays[0] < 10 and delays[-1] > 150
    assert max(b - a for a, b in itertools.pairwise(delays)) < 5
