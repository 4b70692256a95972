"""The worker's sweep thread (``worker._keep_sweeping``) runs without an application context and
must never die: each round wakes the delivery pass, a webhook pass and the digests, and a failed
round (the queue restarting) is logged and the next one runs."""

from __future__ import annotations

from typing import Any

import pytest

from portal.notifications import worker
from portal.webhooks import sender


def test_a_webhook_pass_is_queued_without_an_application_context(monkeypatch: Any) -> None:
    queued: list[str] = []
    monkeypatch.setattr(sender, "_pass", lambda: queued.append("pass"))
    sender.enqueue_pass()  # no app fixture here: the sweep thread has no context either
    assert queued == ["pass"]


def test_a_failed_round_does_not_stop_the_sweep(monkeypatch: Any) -> None:
    calls: list[str] = []
    rounds = iter(range(3))

    def sleep(_seconds: float) -> None:
        if next(rounds, None) is None:
            raise SystemExit  # end the endless loop after three rounds

    def queue_down() -> None:
        calls.append("webhooks")
        raise ConnectionError("redis is restarting")

    monkeypatch.setattr(worker.time, "sleep", sleep)
    monkeypatch.setattr(worker.jobs, "_wake", lambda: calls.append("deliveries"))
    monkeypatch.setattr(worker.webhooks, "enqueue_pass", queue_down)
    monkeypatch.setattr(worker.digests, "build_now", lambda: calls.append("digests"))
    with pytest.raises(SystemExit):
        worker._keep_sweeping(0.01)
    assert calls.count("deliveries") == 3 and calls.count("webhooks") == 3
