"""``make run``'s supervisor (scripts/run_dev.py), with quick fake children instead of the portal.

Backoff arithmetic is tested as pure functions; the restart and stop behaviour with real child
processes (tiny ``python -c`` programs) and a base delay of a few hundredths of a second.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.run_dev import Backoff, Child, Supervisor, describe_exit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CRASH = [PY, "-c", "import sys; print('boom', flush=True); sys.exit(1)"]
SLEEP = [PY, "-c", "import time; time.sleep(60)"]
FAST = Backoff(base=0.05, cap=0.2, reset_after=60.0, crash_loop=3)


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@contextmanager
def running(supervisor: Supervisor) -> Iterator[threading.Thread]:
    """Run the supervisor in a thread (signal handlers stay untouched) and stop it afterwards."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        supervisor.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert result == [0]


def _supervisor(*children: Child, out: io.StringIO, **options: float) -> Supervisor:
    settings: dict[str, float] = {"banner_delay": 0.0, "poll_interval": 0.02, **options}
    return Supervisor(children, backoff=FAST, out=out, cwd=ROOT, **settings)


# --- backoff: pure functions ---------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_counts_fast_exits_and_resets_after_a_healthy_run() -> None:
    backoff = Backoff(reset_after=60.0)
    failures = 0
    for _ in range(4):
        failures = backoff.fast_failures(failures, uptime=0.5)
    assert failures == 4
    assert backoff.delay(failures) == 8
    # Up for a minute: this exit is the first of a new sequence, restarted after the base delay.
    failures = backoff.fast_failures(failures, uptime=60.0)
    assert failures == 1
    assert backoff.delay(failures) == 1
    assert backoff.fast_failures(failures, uptime=59.9) == 2


def test_describe_exit_names_codes_and_signals() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"


# --- supervisor with fake children --------------------------------------------------------------


def test_crashing_child_is_restarted_with_backoff_and_the_console_says_so() -> None:
    out = io.StringIO()
    crasher, sleeper = Child("crasher", CRASH), Child("sleeper", SLEEP)
    supervisor = _supervisor(crasher, sleeper, out=out)
    started = time.monotonic()
    with running(supervisor):
        _wait_for(lambda: "(restart 5)" in out.getvalue())
    elapsed = time.monotonic() - started
    text = out.getvalue()

    restarts = re.findall(r"run_dev \| crasher exited with code 1; restarting in (\S+) s", text)
    assert restarts[:5] == ["0.05", "0.1", "0.2", "0.2", "0.2"]
    assert elapsed >= 0.05 + 0.1 + 0.2 + 0.2  # the delays were waited, not just announced
    assert "(restart 1)" in text and "(restart 4)" in text
    assert " crasher | boom" in text  # the child's own output, prefixed with its name
    # The third fast exit in a row (FAST.crash_loop) is announced loudly, and so is every later one.
    loud = [line for line in text.splitlines() if "CRASH-LOOPING" in line]
    assert loud and "crasher IS CRASH-LOOPING: 3 exits in a row" in loud[0]
    assert text.index("restart 3)") < text.index("CRASH-LOOPING")
    assert text.count("started crasher") >= 5
    # The healthy child was left alone, and stopped with everything else.
    assert text.count("started sleeper") == 1
    assert "sleeper exited" not in text
    assert sleeper.process is not None and sleeper.process.poll() is not None


def test_a_child_that_ignores_sigint_is_killed_after_the_stop_timeout() -> None:
    out = io.StringIO()
    stubborn = Child(
        "stubborn",
        [
            PY,
            "-c",
            "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(60)",
        ],
    )
    with running(_supervisor(stubborn, out=out, stop_timeout=0.3)):
        _wait_for(lambda: "stubborn | ready" in out.getvalue())
    assert stubborn.process is not None and stubborn.process.returncode == -signal.SIGKILL
    assert "stubborn did not stop within 0.3 s; killing it" in out.getvalue()
    assert "restarting" not in out.getvalue()


def test_children_after_one_with_a_ready_file_wait_for_it(tmp_path: Path) -> None:
    # The sandbox's CA: the portal must not start before the sandbox has written it.
    ca = tmp_path / "ca.pem"
    writer = Child(
        "sandbox",
        [
            PY,
            "-c",
            f"import pathlib, time; time.sleep(0.3); pathlib.Path({str(ca)!r}).touch();"
            " time.sleep(60)",
        ],
        ready_file=ca,
    )
    reader = Child(
        "portal",
        [
            PY,
            "-c",
            f"import pathlib, sys, time; sys.exit(3) if not pathlib.Path({str(ca)!r})"
            ".exists() else print('saw the CA', flush=True); time.sleep(60)",
        ],
    )
    out = io.StringIO()
    with running(_supervisor(writer, reader, out=out)):
        _wait_for(lambda: "portal | saw the CA" in out.getvalue())
    assert "restarting" not in out.getvalue()


def test_sigterm_stops_every_child_and_exits_0_without_restarting() -> None:
    driver = (
        "import sys\n"
        "from scripts.run_dev import Backoff, Child, Supervisor, supervise\n"
        f"sleep = {SLEEP!r}\n"
        "children = [Child('one', sleep), Child('two', sleep)]\n"
        "supervisor = Supervisor(children, backoff=Backoff(base=0.05), banner='up\\n',\n"
        "                        banner_delay=0.0, poll_interval=0.02)\n"
        "sys.exit(supervise(supervisor))\n"
    )
    process = subprocess.Popen(  # noqa: S603 - the test's own driver
        [PY, "-c", driver],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if line == "up\n":
            break
    pids = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", "".join(seen))]
    assert len(pids) == 2

    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=5)
    text = "".join(seen) + rest

    assert process.returncode == 0
    assert "stopping one, two" in text
    assert "restarting" not in text
    for pid in pids:  # reaped by the supervisor: gone, not even a zombie
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
