"""The delivery worker: ``python -m portal.notifications.worker`` (Procfile ``worker``).

A huey consumer runs the jobs of :mod:`.jobs` (wake-ups from the web process, scheduled
retries, the per-minute sweep), plus a finer sweep thread.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

from huey.consumer import Consumer

from .. import create_app
from ..preferences import digests
from ..tasks import bind_app, huey
from ..webhooks import sender as webhooks
from . import dispatcher, jobs


def _keep_sweeping(interval: float) -> None:
    # huey's periodic tasks run at most once a minute; a finer sweep shortens the time a row
    # from a killed worker waits after its lease expires. The sweep itself runs on huey.
    while True:
        time.sleep(interval)
        try:
            jobs._wake()
            webhooks.enqueue_pass()
            digests.build_now()
        except Exception:  # the queue is restarting: the next round, or huey's sweep, catches up
            logging.getLogger(__name__).exception("sweep round failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m portal.notifications.worker")
    # Notification passes, webhook passes, digests and syncs each hold a thread while they run.
    parser.add_argument("--threads", type=int, default=4, help="huey worker threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # huey logs two lines per task run, and the sweep thread wakes it every few seconds: keep
    # its warnings and the consumer's start-up and schedule, not each "Executing …".
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(logging.INFO)
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
    main()
