"""A fixed budget (a published limit) through ``pacing``, on a simulated clock: a burst a fraction
above one token keeps a late taker's time and still never lets a one-second window overflow."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from flask import Flask

from portal.integrations.providers.base import PacingBudget
from portal.notifications import pacing

LIMIT = 50  # the provider's: calls in any one second
SENDS = 1000


def simulate(budget: PacingBudget, seed: int) -> tuple[float, int]:
    """One sender taking tokens as soon as the budget allows, waking up to 3 ms late after each
    wait (a busy process); each call reaches the provider up to 8 ms after its token. Returns
    (sends per second, the most calls the provider saw in any one second)."""
    rng = random.Random(seed)
    start = now = 1_800_000_000.0
    arrivals: list[float] = []
    while len(arrivals) < SENDS:
        wait, got = pacing.take_batch(budget, datetime.fromtimestamp(now, UTC))
        if not got:
            now += wait + rng.uniform(0, 0.003)
            continue
        arrivals.extend(now + rng.uniform(0, 0.008) for _ in range(got))
    arrivals.sort()
    busiest, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= 1.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return SENDS / (now - start), busiest


def test_a_fractional_burst_fills_98_percent_of_a_published_limit_without_overflow(
    app: Flask,
) -> None:
    rate, busiest = simulate(PacingBudget("bench:fraction", 0.98 * LIMIT, 1.5), seed=1)
    assert busiest <= LIMIT
    assert rate >= 0.97 * LIMIT, rate


def test_a_burst_of_exactly_one_loses_each_late_takers_time(app: Flask) -> None:
    """Why the fraction: capped at one token, every millisecond a taker comes late is lost."""
    exact, _ = simulate(PacingBudget("bench:exact", 0.98 * LIMIT, 1), seed=1)
    fraction, _ = simulate(PacingBudget("bench:fraction", 0.98 * LIMIT, 1.5), seed=1)
    assert exact < 0.95 * fraction, (exact, fraction)
