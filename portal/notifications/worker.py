"""The delivery worker: ``python -m portal.notifications.worker`` (Procfile ``worker``).

A huey consumer runs three kinds of jobs around :mod:`dispatcher`:
- ``deliver_now`` — enqueued by the web process after it commits new deliveries;
- ``deliver_later`` — scheduled for a retry's due time;
- ``sweep`` — every minute, claims whatever is due or whose lease expired (the backstop that
  makes a lost wake-up or a killed worker cost a delay, never a notification).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import Any, cast

from ..tasks import bind_app, crontab, huey, periodic_task, task
from . import dispatcher


@task()
def _wake() -> int:
    return dispatcher.run_due()


def deliver_now(delivery_ids: list[int]) -> None:
    """Wake a worker for these deliveries (ids are informative: it claims whatever is due)."""
    _wake()


def deliver_later(delivery_id: int, delay: float) -> None:
    """Wake a worker when this delivery's retry is due."""
    cast(Any, _wake).schedule(delay=max(0.0, delay))  # huey TaskWrapper


@periodic_task(crontab(minute="*"))
def sweep() -> int:
    """Claim every due or lease-expired delivery."""
    return dispatcher.run_due()


def _keep_sweeping(interval: float) -> None:
    # huey's periodic tasks run at most once a minute; a finer sweep shortens the time a row
    # from a killed worker waits after its lease expires. The sweep itself runs on huey.
    while True:
        time.sleep(interval)
        _wake()


def main(argv: list[str] | None = None) -> None:
    from huey.consumer import Consumer

    from .. import create_app

    parser = argparse.ArgumentParser(prog="python -m portal.notifications.worker")
    parser.add_argument("--threads", type=int, default=2, help="huey worker threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app()
    bind_app(app)
    with app.app_context():
        interval = float(app.config["DELIVERY_SWEEP_SECONDS"])
        try:
            dispatcher.run_due()  # whatever a previous run left, before waiting for wake-ups
        except Exception:  # e.g. the database is restarting: the sweeps will pick it up
            logging.getLogger(__name__).exception("start-up pass failed; sweeps will retry")
    threading.Thread(target=_keep_sweeping, args=(interval,), daemon=True, name="sweep").start()
    Consumer(huey, workers=args.threads, worker_type="thread", periodic=True).run()


if __name__ == "__main__":
    # Run the module under its import name: huey names tasks after their module, and the web
    # process enqueues "portal.notifications.worker._wake", not "__main__._wake".
    import importlib

    importlib.import_module("portal.notifications.worker").main()
