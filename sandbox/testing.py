"""Run the sandbox inside a test process (stable API for the portal's test suite).

    from sandbox.testing import run_sandbox

    with run_sandbox(tmp_path, portal_url="http://127.0.0.1:5000") as sandbox:
        sandbox.control("POST", "/_control/microsoft/consent", {"tenant_id": DEMO_TENANT_ID})
        requests.get(f"{sandbox.https_url}/microsoft/...", verify=sandbox.ca_bundle)

`RunningSandbox` attributes: `app`, `http_url`, `https_url`, `smtp_port`, `ca_bundle` (str path
of ca.pem), `state`; methods `control(method, path, json=None)`, `reset()`, `configure(**values)`,
`ssl_context()`, `stop()`; usable as a context manager.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from flask import Flask

from sandbox import create_app
from sandbox.server import Servers, start_servers
from sandbox.state import SandboxState
from sandbox.tls import client_ssl_context


class ControlError(RuntimeError):
    """A control API call answered with an error status."""


@dataclass
class RunningSandbox:
    """A sandbox serving on free loopback ports in background threads."""

    app: Flask
    servers: Servers

    @property
    def http_url(self) -> str:
        """Plain-HTTP base URL (consent pages, inspector)."""
        return self.servers.http_url

    @property
    def https_url(self) -> str:
        """HTTPS base URL (tokens, APIs, metadata, Bot Connector)."""
        return self.servers.https_url

    @property
    def smtp_port(self) -> int:
        """Port of the SMTP catcher on 127.0.0.1."""
        return self.servers.smtp_port

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate to trust (`verify=` / `PROVIDER_CA_BUNDLE`)."""
        return str(self.servers.certificates.ca_cert)

    @property
    def state(self) -> SandboxState:
        """Direct access to the in-memory state (prefer the control API in tests)."""
        state: SandboxState = self.app.extensions["sandbox"]
        return state

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the sandbox CA (for slack_sdk and PyJWKClient)."""
        return client_ssl_context(self.ca_bundle)

    def control(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        """Call the control API (`path` starts with /_control/); return the decoded JSON."""
        response = requests.request(method, self.http_url + path, json=json, timeout=30)
        if response.status_code >= 400:
            raise ControlError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def reset(self) -> None:
        """Back to the seeded state."""
        self.control("POST", "/_control/reset")

    def configure(self, **values: Any) -> dict[str, Any]:
        """Change settings (see `sandbox.config.Settings`); returns them all."""
        result: dict[str, Any] = self.control("POST", "/_control/config", values)
        return result

    def stop(self) -> None:
        """Stop the listeners."""
        self.servers.stop()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    tmp_path: str | Path, portal_url: str | None = None, config: dict[str, Any] | None = None
) -> RunningSandbox:
    """Start the sandbox on free ports with its CA under `tmp_path/sandbox-ca/`."""
    settings: dict[str, Any] = {"instance_dir": str(tmp_path), **(config or {})}
    if portal_url:
        settings["portal_url"] = portal_url
    app = create_app(settings)
    servers = start_servers(app, 0, 0, 0, tmp_path)
    return RunningSandbox(app, servers)
