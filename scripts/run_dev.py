"""``make run``: start the sandbox providers, the delivery worker and the portal together.

Ctrl-C stops all of them. Each process's output is prefixed with its name. The portal runs on
http://127.0.0.1:5000, the sandbox inspector on http://127.0.0.1:5001.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
INSTANCE = ROOT / "instance"

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
}
# The delivery worker joins once it exists (issue #4).
if (ROOT / "portal" / "notifications" / "worker.py").exists():
    PROCESSES["worker"] = [PY, "-m", "portal.notifications.worker"]

LOGINS = """
  Chat Connect is running.
    Portal:            http://127.0.0.1:5000   (log in below)
    Sandbox inspector: http://127.0.0.1:5001   (Slack / Chatwork / Microsoft stand-ins, mail)
  Demo logins (password: {password}):
    admin@demo.example            admin of デモ株式会社
    member01@demo.example         member of デモ株式会社
    admin@sample.example          admin of サンプル商事
    support@chat-connect.example  vendor support (read-only)
  Ctrl-C stops everything.
"""


def _pump(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:>8} | {line}")
        sys.stdout.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the children too
    env = dict(
        os.environ, PORTAL_ENV=os.environ.get("PORTAL_ENV", "development"), PYTHONUNBUFFERED="1"
    )
    children: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, command in PROCESSES.items():
            children[name] = subprocess.Popen(  # noqa: S603 - our own fixed commands
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            threading.Thread(target=_pump, args=(name, children[name].stdout), daemon=True).start()
            if name == "sandbox":
                # The portal trusts the sandbox's CA: wait until it has been generated.
                for _ in range(100):
                    if (INSTANCE / "sandbox-ca" / "ca.pem").exists():
                        break
                    time.sleep(0.1)
        time.sleep(1.5)
        print(
            LOGINS.format(password=os.environ.get("DEMO_PASSWORD") or "demo-pass-1234"), flush=True
        )
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        failed = [name for name, child in children.items() if child.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
