"""One sandbox per test session on free ports; every test starts from the seeded state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from sandbox.testing import RunningSandbox, run_sandbox
from tests.sandbox.flows import FakePortal


@pytest.fixture(scope="session")
def running_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """The session's sandbox. Events and activities go to an unused port (nothing listens)."""
    folder: Path = tmp_path_factory.mktemp("sandbox-instance")
    with run_sandbox(folder, portal_url="http://127.0.0.1:9") as running:
        yield running


@pytest.fixture
def sandbox(running_sandbox: RunningSandbox) -> RunningSandbox:
    """The sandbox, reset to its seeded state."""
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def fake_portal(sandbox: RunningSandbox) -> Iterator[FakePortal]:
    """Point the sandbox's portal URL at a recording server for one test."""
    portal = FakePortal()
    server = make_server("127.0.0.1", 0, portal, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sandbox.configure(portal_url=f"http://127.0.0.1:{server.server_port}")
    yield portal
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
