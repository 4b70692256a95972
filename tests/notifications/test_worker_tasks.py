"""The worker process knows the tasks the web process enqueues (same huey task names)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.notifications.test_workers import start_worker


def test_worker_registers_tasks_under_their_import_names(
    app: Any, sandbox: Any, tmp_path: Path
) -> None:
    worker = start_worker(app, tmp_path, "names")
    log = tmp_path / "worker-names.log"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "commands are available" not in log.read_text():
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    text = log.read_text()
    assert "+ portal.notifications.jobs._wake" in text  # what the web process enqueues
    assert "+ portal.notifications.jobs.sweep" in text
    assert "__main__." not in text  # each task once: no second sweep under the script's name
    assert "+ portal.integrations.health._send_admin_alerts" in text
