"""The delivery worker's jobs, run by a huey consumer around :mod:`dispatcher`:

- ``deliver_now`` — enqueued by the web process after it commits new deliveries;
- ``deliver_later`` — scheduled for a retry's due time;
- ``sweep`` — every minute, claims whatever is due or whose lease expired (the backstop that
  makes a lost wake-up or a killed worker cost a delay, never a notification), after the
  stuck-delivery guard (:mod:`.stuck`) has ended rows whose attempts a dying worker spent.

They live apart from the entry point (:mod:`.worker`): huey names a task after its module, and
``python -m portal.notifications.worker`` runs that file as ``__main__``, which would register
every task a second time under another name (two sweeps a minute).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from ..tasks import crontab, periodic_task, task
from . import dispatcher, stuck

log = logging.getLogger(__name__)


def _run() -> int:
    ran = dispatcher.run_due()
    if ran:  # one line per busy pass, none for the idle ones every few seconds
        log.info("deliveries attempted: %d", ran)
    return ran


@task()
def _wake() -> int:
    return _run()


def deliver_now(delivery_ids: list[int]) -> None:
    """Wake a worker for these deliveries (ids are informative: it claims whatever is due)."""
    _wake()


def deliver_later(delivery_id: int, delay: float) -> None:
    """Wake a worker when this delivery's retry is due."""
    cast(Any, _wake).schedule(delay=max(0.0, delay))  # huey TaskWrapper


# Retries and fallbacks wake a worker at their due time (the dispatcher cannot import us).
dispatcher.wake_with(deliver_later)


@periodic_task(crontab(minute="*"))
def sweep() -> int:
    """Claim every due or lease-expired delivery; end and report the ones stuck for good."""
    ended = dispatcher.end_exhausted_leases()
    if ended:
        log.warning("deliveries ended after their worker stopped on every attempt: %s", ended)
    stuck.alert_abandoned()
    return _run()
