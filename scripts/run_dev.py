"""``make run``: start the sandbox providers, the portal and the delivery worker, and keep them up.

A small supervisor: when a child exits on its own, it is started again after a short exponential
backoff (1 s, 2 s, 4 s … at most 30 s; back to 1 s once the child has stayed up for a minute), and
the console says so. A child that keeps failing is still restarted, with a loud warning, so fixing
the code brings it back without restarting ``make run``. Ctrl-C or SIGTERM stops every child
(SIGINT, then SIGKILL after 10 s) and restarts nothing. Each process's output is prefixed with its
name. The portal runs on http://127.0.0.1:5000, the sandbox inspector on http://127.0.0.1:5001.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
INSTANCE = ROOT / "instance"
#: The sandbox writes its CA here on first start; the portal trusts it, so it starts after.
SANDBOX_CA = INSTANCE / "sandbox-ca" / "ca.pem"

PROCESSES: dict[str, list[str]] = {
    "sandbox": [
        PY,
        "-m",
        "sandbox",
        "--port",
        "5001",
        "--tls-port",
        "5443",
        "--smtp-port",
        "1025",
        "--portal-url",
        "http://127.0.0.1:5000",
        "--instance-dir",
        str(INSTANCE),
    ],
    "portal": [
        PY,
        "-m",
        "flask",
        "--app",
        "wsgi",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        "5000",
        "--no-reload",
        "--with-threads",
    ],
    "worker": [PY, "-m", "portal.notifications.worker"],
}

LOGINS = """
  Chat Connect is running.
    Portal:            http://127.0.0.1:5000   (log in below)
    Sandbox inspector: http://127.0.0.1:5001   (Slack / Chatwork / Microsoft stand-ins, mail)
  Demo logins (password: {password}):
    admin@demo.example            admin of デモ株式会社
    member01@demo.example         member of デモ株式会社
    admin@sample.example          admin of サンプル商事
    support@chat-connect.example  vendor support (read-only)
  A child that exits is restarted. Ctrl-C stops everything.
"""

#: Prefix of the supervisor's own lines, so they stand out from the children's output.
SELF = "run_dev"


@dataclass(frozen=True)
class Backoff:
    """When to restart a child that exited: pure arithmetic, so it is tested without processes."""

    base: float = 1.0
    cap: float = 30.0
    #: A child that stayed up this long was healthy: its next exit starts the sequence afresh.
    reset_after: float = 60.0
    #: This many fast exits in a row is a crash loop, worth a loud warning.
    crash_loop: int = 5

    def fast_failures(self, previous: int, uptime: float) -> int:
        """Consecutive fast exits, counting the one that just happened after ``uptime`` seconds."""
        return 1 if uptime >= self.reset_after else previous + 1

    def delay(self, fast_failures: int) -> float:
        """Seconds before the restart: base, 2·base, 4·base … never more than the cap."""
        return min(self.cap, self.base * 2.0 ** (fast_failures - 1))


def describe_exit(returncode: int) -> str:
    """``exited with code 1``, or ``was killed by SIGKILL`` (Popen reports signals as -N)."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


@dataclass
class Child:
    """One supervised process: what to run, and the bookkeeping its restarts need."""

    name: str
    command: Sequence[str]
    #: Children after this one are started only once it exists (or after ``ready_timeout``).
    ready_file: Path | None = None
    process: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    fast_failures: int = 0
    restarts: int = 0
    #: Monotonic time of the pending restart; None while the child runs.
    restart_due: float | None = None


class Supervisor:
    """Starts the children in order, restarts the ones that exit, stops them all on request."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        backoff: Backoff | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        out: TextIO | None = None,
        banner: str = "",
        banner_delay: float = 1.5,
        poll_interval: float = 0.2,
        ready_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = list(children)
        self.backoff = backoff or Backoff()
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.out = out or sys.stdout
        self.banner = banner
        self.banner_delay = banner_delay
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.clock = clock
        self._stopping = False
        # Pump threads and the supervisor write to one stream: whole lines, never interleaved.
        self._write_lock = threading.Lock()

    def stop(self, *_: object) -> None:
        """Ask :meth:`run` to stop everything: only sets a flag, so it is a safe signal handler."""
        self._stopping = True

    def run(self) -> int:
        """Supervise until :meth:`stop`; every child is stopped before this returns 0."""
        try:
            for child in self.children:
                if self._stopping:
                    break
                self._spawn(child)
                if child.ready_file is not None:
                    self._wait_until_ready(child, child.ready_file)
            self._pause(self.banner_delay)
            if self.banner and not self._stopping:
                self.say(self.banner, prefix=False)
            while not self._stopping:
                for child in self.children:
                    self._check(child)
                time.sleep(self.poll_interval)
            return 0
        finally:
            self._stop_all()

    def say(self, message: str, *, prefix: bool = True) -> None:
        self._write(f"{SELF:>8} | {message}\n" if prefix else message)

    def _write(self, text: str) -> None:
        with self._write_lock:
            self.out.write(text)
            self.out.flush()

    def _pump(self, name: str, stream: IO[str]) -> None:
        # Until end of file, i.e. the child exited; then close the pipe, since restarts add more.
        with stream:
            for line in iter(stream.readline, ""):
                self._write(f"{name:>8} | {line}")

    def _spawn(self, child: Child) -> None:
        child.started_at = self.clock()
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed commands from PROCESSES (or a test)
                child.command,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as error:
            # A missing interpreter or module path: treated like a crash, so it is retried too.
            child.process = None
            self._schedule_restart(child, f"could not start ({error})")
            return
        child.process = process
        assert process.stdout is not None  # stdout=PIPE
        child.pump = threading.Thread(
            target=self._pump, args=(child.name, process.stdout), daemon=True
        )
        child.pump.start()
        self.say(f"started {child.name} (pid {process.pid})")

    def _wait_until_ready(self, child: Child, ready_file: Path) -> None:
        deadline = self.clock() + self.ready_timeout
        while not ready_file.exists() and not self._stopping and self.clock() < deadline:
            if child.process is None or child.process.poll() is not None:
                return  # it died before getting ready: the main loop restarts it
            time.sleep(min(0.1, self.poll_interval))
        if not ready_file.exists() and not self._stopping:
            self.say(f"{child.name} has not written {ready_file} yet; starting the rest anyway")

    def _pause(self, seconds: float) -> None:
        deadline = self.clock() + seconds
        while not self._stopping and self.clock() < deadline:
            time.sleep(min(self.poll_interval, max(0.0, deadline - self.clock())))

    def _check(self, child: Child) -> None:
        # A Ctrl-C also reaches the children, which exit: that must not look like a crash.
        if self._stopping:
            return
        if child.restart_due is not None:
            if self.clock() >= child.restart_due:
                child.restart_due = None
                child.restarts += 1
                self._spawn(child)
            return
        if child.process is not None and (code := child.process.poll()) is not None:
            self._schedule_restart(child, describe_exit(code))

    def _schedule_restart(self, child: Child, how: str) -> None:
        uptime = self.clock() - child.started_at
        child.fast_failures = self.backoff.fast_failures(child.fast_failures, uptime)
        delay = self.backoff.delay(child.fast_failures)
        child.restart_due = self.clock() + delay
        self.say(f"{child.name} {how}; restarting in {delay:g} s (restart {child.restarts + 1})")
        if child.fast_failures >= self.backoff.crash_loop:
            self.say(
                f"!!! {child.name} IS CRASH-LOOPING: {child.fast_failures} exits in a row, each"
                f" within {self.backoff.reset_after:g} s of starting. See its output above;"
                f" still restarting it (at most every {self.backoff.cap:g} s) !!!"
            )

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        if running:
            self.say(f"stopping {', '.join(c.name for c in running)}")
        # SIGINT, as Ctrl-C would: Flask and the worker shut down cleanly on it.
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGINT)
        deadline = self.clock() + self.stop_timeout
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {self.stop_timeout:g} s; killing it")
                child.process.kill()
                child.process.wait()
        # Let the pumps print the children's last lines before the supervisor exits.
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=1.0)


def supervise(supervisor: Supervisor) -> int:
    """Run ``supervisor`` with Ctrl-C and SIGTERM (``kill``) meaning "stop everything"."""
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    return supervisor.run()


def default_children(processes: Mapping[str, Sequence[str]] = PROCESSES) -> list[Child]:
    return [
        Child(name, command, ready_file=SANDBOX_CA if name == "sandbox" else None)
        for name, command in processes.items()
    ]


def main() -> int:
    env = dict(
        os.environ, PORTAL_ENV=os.environ.get("PORTAL_ENV", "development"), PYTHONUNBUFFERED="1"
    )
    password = os.environ.get("DEMO_PASSWORD") or "demo-pass-1234"
    supervisor = Supervisor(
        default_children(), env=env, cwd=ROOT, banner=LOGINS.format(password=password)
    )
    return supervise(supervisor)


if __name__ == "__main__":
    sys.exit(main())
