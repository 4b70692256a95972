"""What the chat benchmarks count the same way: a provider client's API calls and the 429s
among them, and the figures of the portal's part of a run."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # as the chat benchmarks import it: one module, once

from dispatch import percentile, sent_stats  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from portal.extensions import db  # noqa: E402
from portal.integrations.providers.base import ProviderRateLimited  # noqa: E402
from portal.notifications.models import Delivery, DeliveryState  # noqa: E402


class CallCounter:
    """Counts every call of a client function, and those it answered with
    ``ProviderRateLimited`` (a 429), in shared memory: worker processes forked while it is
    installed count into the same figures."""

    def __init__(self) -> None:
        self._calls = multiprocessing.Value("q", 0)
        self._limited = multiprocessing.Value("q", 0)

    @property
    def calls(self) -> int:
        return int(self._calls.value)

    @property
    def limited(self) -> int:
        return int(self._limited.value)

    @property
    def share_limited(self) -> float:
        return round(self.limited / max(1, self.calls), 4)

    def counting(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, counted. A plain function, so it also works as a method."""

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except ProviderRateLimited:
                with self._limited.get_lock():
                    self._limited.value += 1
                raise
            finally:
                with self._calls.get_lock():
                    self._calls.value += 1

        return counted

    @contextlib.contextmanager
    def installed(self, owner: Any, name: str) -> Iterator[CallCounter]:
        """``owner.name`` (a module's function or a class's method) counted while the block
        runs, and put back after it."""
        original = getattr(owner, name)
        setattr(owner, name, self.counting(original))
        try:
            yield self
        finally:
            setattr(owner, name, original)


def portal_figures(app: Any, elapsed: float, counter: CallCounter) -> dict[str, Any]:
    """What the portal's part of a chat benchmark reports: sent and not, the pace, the API
    calls and 429s, and the enqueue-to-sent latency."""
    sent, latencies = sent_stats(app)
    with app.app_context():
        not_sent = db.session.scalar(
            select(func.count()).where(Delivery.state != DeliveryState.SENT)
        )
    return {
        "sent": sent,
        "not_sent": not_sent,
        "seconds": round(elapsed, 2),
        "per_second": round(sent / elapsed, 2),
        "api_calls": counter.calls,
        "answered_429": counter.limited,
        "share_429": counter.share_limited,
        "enqueue_to_sent_p50_s": round(percentile(latencies, 50), 2) if latencies else None,
        "enqueue_to_sent_p95_s": round(percentile(latencies, 95), 2) if latencies else None,
    }
