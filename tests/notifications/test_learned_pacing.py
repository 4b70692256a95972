"""The learned workspace budget (``notifications/ceiling.py`` through ``pacing``) against a provider
that counts in a sliding window, on a simulated clock: first broadcast, a halved limit, a raised
one. The provider is the sandbox's own limiter (``sandbox/ratelimit.py``), given the time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.integrations.models import ChatAccount, Integration
from portal.integrations.providers.base import PacingBudget
from portal.integrations.providers.slack import SlackProvider
from portal.notifications import ceiling, pacing
from portal.notifications.models import PacingBucket
from sandbox.ratelimit import RateLimiter

WINDOW = 60.0
#: Slack's start: the per-channel rate, bursts of 5, the ceiling learned per minute.
BUDGET = PacingBudget("slack:TSIM", 1.0, 5, window=WINDOW)
CALL_SECONDS = 0.01  # each send takes this long on the simulated clock


@dataclass
class Run:
    """What a simulated sender saw: accepted send times, 429 times, the limit after each 429."""

    start: float
    sent: list[float] = field(default_factory=list)
    limited: list[float] = field(default_factory=list)
    limits: list[float] = field(default_factory=list)

    def rate_between(self, begin: float, end: float) -> float:
        return sum(1 for t in self.sent if begin <= t < end) / (end - begin)


def simulate(sends: int, limit_at: Callable[[float], int], horizon: float = 3600.0) -> Run:
    """Send ``sends`` messages as fast as the budget lets one sender, against a provider
    allowing ``limit_at(seconds since start)`` per minute in a sliding window."""
    limiter = RateLimiter()
    run = Run(start=time.time())
    now = run.start
    while len(run.sent) < sends and now < run.start + horizon:
        wait, got = pacing.take_batch(BUDGET, datetime.fromtimestamp(now, UTC))
        if not got:
            now += max(wait, CALL_SECONDS)
            continue
        for _ in range(min(got, sends - len(run.sent))):
            rules = [(limit_at(now - run.start), WINDOW)]
            decision = limiter.hit("workspace", rules, now=now)
            if not decision.allowed:
                run.limited.append(now)
                retry_after = float(decision.retry_after_header)
                pacing.limited(BUDGET, retry_after, datetime.fromtimestamp(now, UTC))
                run.limits.append(learned().limit or 0)
                break  # the rest of the batch is void, as after a real 429
            run.sent.append(now)
            now += CALL_SECONDS
    return run


def learned() -> ceiling.Learned:
    bucket = db.session.get(PacingBucket, BUDGET.key, populate_existing=True)
    assert bucket is not None
    return ceiling.Learned.load(bucket.learned, BUDGET.rate, time.time())


def test_first_broadcast_fills_the_workspace_limit_it_was_never_told(app: Flask) -> None:
    """1,000 first DMs at 400/min: ≥ 0.9 of the limit, < 1 % of calls answered 429."""
    run = simulate(1000, lambda _: 400)
    duration = run.sent[-1] - run.start
    assert len(run.sent) == 1000
    assert 1000 / duration >= 0.9 * 400 / WINDOW, (duration, run.limited, run.limits)
    assert len(run.limited) / (len(run.sent) + len(run.limited)) < 0.01, run.limited
    # Within a probe's step of the ceiling (a clean window may have just raised it past).
    assert 0.9 * 400 <= (learned().limit or 0) <= 1.1 * 400


def test_a_halved_limit_is_found_within_a_minute_with_few_429s(app: Flask) -> None:
    """400/min, then 200/min from the third minute: within a minute of the change the learned
    limit is under the new one, < 2 % of calls after the change are answered 429, and the sender
    is back at ≥ 0.9 of the new limit. (Later 429s are the periodic probe, as at any ceiling.)"""
    change = 150.0
    run = simulate(2600, lambda elapsed: 400 if elapsed < change else 200)
    halved = run.start + change
    after = [(t, limit) for t, limit in zip(run.limited, run.limits, strict=True) if t >= halved]
    assert any(t - halved <= WINDOW and limit <= 200 for t, limit in after), after
    calls_after = sum(1 for t in run.sent if t >= halved) + len(after)
    assert len(after) / calls_after < 0.02
    assert run.rate_between(halved + WINDOW, halved + 4 * WINDOW) >= 0.9 * 200 / WINDOW
    assert 0.9 * 200 <= (learned().limit or 0) <= 1.1 * 200


def test_a_raised_limit_is_found_again(app: Flask) -> None:
    """200/min, then 400/min: clean windows raise the learned limit back to the new ceiling."""
    change = 150.0
    run = simulate(4000, lambda elapsed: 200 if elapsed < change else 400)
    raised = run.start + change
    assert run.rate_between(raised + 6 * WINDOW, raised + 9 * WINDOW) >= 0.9 * 400 / WINDOW
    assert len(run.limited) / (len(run.sent) + len(run.limited)) < 0.01


def test_a_steady_ceiling_costs_well_under_one_percent_429s(app: Flask) -> None:
    """Probing again after each clean window touches the ceiling now and then, not often."""
    run = simulate(5000, lambda _: 400)
    assert len(run.limited) / (len(run.sent) + len(run.limited)) < 0.01
    assert len(run.sent) / (run.sent[-1] - run.start) >= 0.9 * 400 / WINDOW


def test_retry_after_blocks_the_learned_bucket(app: Flask) -> None:
    now = datetime.fromtimestamp(time.time(), UTC)
    assert pacing.take_batch(BUDGET, now)[1] >= 1
    pacing.limited(BUDGET, 30.0, now)
    wait, got = pacing.take_batch(BUDGET, now)
    assert got == 0 and 29.9 <= wait <= 30.0


def test_429s_of_one_event_lower_the_limit_once(app: Flask) -> None:
    """Sends already on their way when the first 429 came get 429 too: one event, one decrease."""
    run = simulate(500, lambda _: 400)
    assert run.limited
    limit = learned().limit
    now = datetime.fromtimestamp(run.sent[-1] + 1, UTC)
    pacing.limited(BUDGET, 20.0, now)
    once = learned().limit
    for _ in range(5):
        pacing.limited(BUDGET, 20.0, now)
    assert learned().limit == once and once is not None and limit is not None
    assert once <= limit


documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    document=documents
    | st.fixed_dictionaries(
        {"rate": st.floats() | st.text(), "limit": st.none() | st.floats() | st.integers()},
        optional={"slots": st.dictionaries(st.text(max_size=4), st.integers() | st.text())},
    )
)
@settings(max_examples=300, deadline=None)
def test_a_damaged_state_document_starts_afresh_instead_of_failing_sends(document: Any) -> None:
    state = ceiling.Learned.load(document, 1.0, 1000.0)
    assert state.rate > 0 and (state.limit is None or state.limit >= 1)
    ceiling.adapt(state, WINDOW, 1001.0)
    assert ceiling.room(state, WINDOW, 1001.0) > -1e12
    ceiling.record(state, WINDOW, 1001.0, 1)
    ceiling.limited(state, WINDOW, 1002.0)
    assert state.limit is not None and state.limit >= 1 and state.rate > 0


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["take", "limited"]), st.floats(0, 30), st.integers(1, 50)),
        max_size=60,
    )
)
@settings(max_examples=300, deadline=None)
def test_sends_counted_never_exceed_the_learned_limit(events: list[tuple[str, float, int]]) -> None:
    """Whatever happens, a sender that takes only the room given never pushes the count over
    the limit (after a decrease it may already be over: then there is no room)."""
    state = ceiling.Learned(rate=1.0, changed_at=0.0)
    now = 0.0
    for kind, later, count in events:
        now += later
        if kind == "limited":
            ceiling.limited(state, WINDOW, now)
            continue
        ceiling.adapt(state, WINDOW, now)
        before = ceiling.used(state, WINDOW, now)
        space = ceiling.room(state, WINDOW, now)
        taken = int(min(count, space)) if space >= 1 else 0
        if taken:
            ceiling.record(state, WINDOW, now, taken)
        if state.limit is not None:
            assert ceiling.used(state, WINDOW, now) <= max(state.limit, before)
        if not taken and count:
            assert space < 1
        assert state.rate > 0


def test_a_dm_channel_budget_stays_in_the_process(app: Flask) -> None:
    """Slack's 1 a second per channel with bursts of 5, kept in the worker: no database row."""
    channel = PacingBudget("slack:TSIM:U0001", 1.0, 5, shared=False)
    assert [pacing.await_tokens([channel]) for _ in range(5)] == [0.0] * 5
    started = time.monotonic()
    assert pacing.await_tokens([channel]) == 0.0  # the sixth waits for its token (~1 s)
    assert time.monotonic() - started >= 0.9
    assert db.session.get(PacingBucket, channel.key) is None
    other = PacingBudget("slack:TSIM:U0002", 1.0, 5, shared=False)
    assert pacing.await_tokens([other]) == 0.0  # another member's channel is not slowed


def test_slack_dms_draw_from_the_learned_workspace_and_the_members_channel() -> None:
    integration = Integration(provider="slack", external_id="TSIM", organization_id=1)
    account = ChatAccount(external_id="U0001", name="member")
    workspace, channel = SlackProvider().budgets(integration, account)
    assert workspace == SlackProvider().pacing(integration)
    assert workspace.window == 60.0 and workspace.shared
    assert (channel.key, channel.rate, channel.burst, channel.shared) == (
        "slack:TSIM:U0001",
        1.0,
        5,
        False,
    )
