"""Pacing Graph calls for one tenant: a token bucket shared by a run's threads.

Graph counts requests in sliding windows per app per tenant (and answers 429 with a
``Retry-After`` past them), so a background job that makes many calls spaces them itself
instead of meeting the limit: the app install run (``installs.py``) and the mailbox settings
read during a directory sync (``mailbox.py``).
"""

from __future__ import annotations

import threading
import time


class Gate:
    """Requests at ``rate`` a second, at most ``burst`` at once, shared by the run's threads.

    A burst of 1 spaces requests evenly: where the rate is near Graph's limit any burst on top
    of it is a 429. :meth:`wait` may take several at once (``cost``: the requests of one JSON
    batch, each counted by Graph); the next caller then waits until they are paid for.
    :meth:`hold` closes the gate for a ``Retry-After``, and nothing accrues meanwhile.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.closed_until = 0.0
        self.lock = threading.Lock()

    def wait(self, cost: float = 1.0) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                if now >= self.closed_until:
                    elapsed = max(0.0, now - self.stamp)
                    self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
                    self.stamp = now
                    # A cost above the bucket's size goes once the bucket is full, into debt.
                    needed = min(cost, self.capacity)
                    if self.tokens >= needed:
                        self.tokens -= cost
                        return
                    pause = (needed - self.tokens) / self.rate
                else:
                    pause = self.closed_until - now
            time.sleep(pause)

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.closed_until = max(self.closed_until, time.monotonic() + seconds)
            self.tokens = 0.0
            self.stamp = self.closed_until
