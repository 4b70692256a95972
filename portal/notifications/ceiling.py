"""A send rate learned from the provider's answers: for a limit that is not published as a number.

Slack documents chat.postMessage's workspace limit only as "several hundred per minute". A
fixed budget that is safe everywhere wastes most of it; one that fills it somewhere is 429s
elsewhere. So the budget is learned, the way TCP learns a path's capacity:

- **Probe.** Start at the provider's safe rate and double it every eighth of the window in
  which senders were kept waiting, until the first 429. Faster doubling would fill the window
  no sooner in effect (the provider's window must slide either way) but would meet the first
  429 at a higher rate, with more sends on their way to collect a 429 too.
- **Decrease.** On a 429 the ceiling is what got through in the window just before it: the
  limit becomes :data:`DECREASE` of that (below the observed ceiling). ``Retry-After`` blocks
  the bucket besides (``pacing.limited``). The rate then allows :data:`FOLLOW` times the limit
  spread over the window: the count, not the rate, keeps sends under the limit, and the limit
  spread evenly could not follow the window as it slides past the probe's fast sends; more
  would put more sends on their way to collect a 429 when the ceiling moves.
- **Increase.** Each window that passes without a 429 while senders waited raises the limit,
  by :data:`INCREASE` the first time and twice the last step each time after: a ceiling that
  did not move is touched again within a few windows (one 429 per few windows of sends), and
  one that doubled is found in about five.

Besides the rate, sends are counted per slot over the last window, and a send that would take
the count past the limit waits for the oldest slot to leave: the provider counts in a sliding
window, so a rate alone would run into what the probe sent a window ago.

Everything is in units of the window, so the controller behaves the same under a sandbox whose
windows are compressed. The state is a small JSON document in the bucket's row
(``PacingBucket.learned``), read and written under the row lock: every worker process shares
one learned limit per workspace. The functions here are pure; ``pacing`` does the locking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Slots per window: the resolution of the sliding-window count.
SLOTS = 60
#: After a 429, the limit is this share of what got through in the window before it.
DECREASE = 0.97
#: The first clean window in which senders waited raises the limit by this share (at least one
#: send); each further one by twice the step before.
INCREASE = 0.05
#: While probing, the rate is multiplied by this each 1/PROBE_STEPS of the window in which
#: senders waited.
PROBE_FACTOR = 2.0
PROBE_STEPS = 8
#: Once the limit is known, the rate allows this many times the limit spread over the window.
FOLLOW = 2.0


@dataclass
class Learned:
    """What has been learned about one bucket's limit; stored as JSON in its row."""

    rate: float  # sends per second now
    limit: float | None = None  # sends per window; None while probing (no 429 seen yet)
    changed_at: float = 0.0  # Unix time of the last increase or decrease
    waited: bool = False  # a sender waited since changed_at: the budget, not demand, bound
    step: float = INCREASE  # the share the next clean window adds to the limit
    slots: dict[int, int] = field(default_factory=dict)  # slot number -> sends counted in it

    @classmethod
    def load(cls, document: Any, start_rate: float, now: float) -> Learned:
        """The state stored in a row, or a fresh one at ``start_rate``; a damaged document
        (edited by hand, written by another version) starts afresh rather than failing sends."""
        try:
            limit = document.get("limit")
            return cls(
                rate=max(_finite(document["rate"]), 1e-6),
                limit=None if limit is None else max(_finite(limit), 1.0),
                changed_at=_finite(document.get("changed_at", now)),
                waited=bool(document.get("waited", False)),
                step=min(max(_finite(document.get("step", INCREASE)), INCREASE), 1.0),
                slots={int(k): int(v) for k, v in (document.get("slots") or {}).items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            return cls(rate=start_rate, changed_at=now)

    def dump(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "limit": self.limit,
            "changed_at": self.changed_at,
            "waited": self.waited,
            "step": self.step,
            "slots": {str(k): v for k, v in self.slots.items()},
        }


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _slot(now: float, window: float) -> int:
    return math.floor(now / (window / SLOTS))


def used(state: Learned, window: float, now: float) -> int:
    """Sends counted in the window ending now. The oldest slot counts whole although part of
    it has left the window: the count errs high, never low."""
    first = _slot(now, window) - SLOTS
    for slot in [s for s in state.slots if s < first]:
        del state.slots[slot]
    return sum(state.slots.values())


def room(state: Learned, window: float, now: float) -> float:
    """How many more sends the window holds (unbounded while probing)."""
    if state.limit is None:
        return math.inf
    return state.limit - used(state, window, now)


def frees_in(state: Learned, window: float, now: float) -> float:
    """Seconds until the oldest counted slot leaves the window."""
    if not state.slots:
        return 0.0
    width = window / SLOTS
    return max(width, (min(state.slots) + SLOTS + 1) * width - now)


def record(state: Learned, window: float, now: float, count: int) -> None:
    """Count ``count`` sends in the current slot."""
    slot = _slot(now, window)
    state.slots[slot] = state.slots.get(slot, 0) + count


def _rate(limit: float, window: float) -> float:
    return limit * FOLLOW / window


def release(state: Learned, count: int) -> None:
    """Uncount ``count`` sends that never reached the provider's count (answered 429, or
    reserved and voided by one), newest first: the count must mirror the provider's."""
    for slot in sorted(state.slots, reverse=True):
        if count <= 0:
            return
        taken = min(count, state.slots[slot])
        state.slots[slot] -= taken
        count -= taken
        if not state.slots[slot]:
            del state.slots[slot]


def adapt(state: Learned, window: float, now: float) -> None:
    """Raise the rate or the limit when the budget held senders back long enough cleanly."""
    if not state.waited:
        return
    if state.limit is None:
        if now - state.changed_at >= window / PROBE_STEPS:
            state.rate *= PROBE_FACTOR
            state.changed_at, state.waited = now, False
    elif now - state.changed_at >= window:
        state.limit = max(state.limit * (1 + state.step), state.limit + 1)
        state.rate = _rate(state.limit, window)
        state.step = min(state.step * 2, 1.0)
        state.changed_at, state.waited = now, False


def limited(state: Learned, window: float, now: float) -> None:
    """A 429: the limit drops below what got through in the window before it. The oldest slot,
    partly out of the window, is left out of that count: here it must err low."""
    used(state, window, now)  # drops the slots that left the window
    oldest = _slot(now, window) - SLOTS
    observed = sum(count for slot, count in state.slots.items() if slot > oldest)
    before = state.limit if state.limit is not None else state.rate * window
    state.limit = max(1.0, (observed or before) * DECREASE)
    state.rate = _rate(state.limit, window)
    state.step = INCREASE
    state.changed_at, state.waited = now, False
