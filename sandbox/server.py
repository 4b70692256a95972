"""Serve the sandbox app: one plain-HTTP and one HTTPS listener plus the SMTP catcher.

Both listeners serve the same app and paths; browser pages are meant for the HTTP port,
server-to-server endpoints for the HTTPS port (design.md §2).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.mail import start_smtp
from sandbox.state import SandboxState
from sandbox.tls import CertificateFiles, ensure_certificates, server_ssl_context

HOST = "127.0.0.1"  # loopback only: the sandbox must never be reachable from elsewhere


class QuietRequestHandler(WSGIRequestHandler):
    """Access log without query strings: they may carry codes or (legacy) tokens.

    HTTP/1.1 keeps connections open between requests, as the real providers' servers do: the
    portal's pooled clients (and a webhook burst into the receiver) then reuse them instead of
    paying a TCP handshake and a server thread per request.
    """

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path and status only."""
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s', self.command, path, code)


@dataclass
class Servers:
    """The running listeners."""

    http: BaseWSGIServer
    https: BaseWSGIServer
    smtp: Controller
    certificates: CertificateFiles
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        """Base URL of the plain listener."""
        return f"http://{HOST}:{self.http.server_port}"

    @property
    def https_url(self) -> str:
        """Base URL of the TLS listener."""
        return f"https://{HOST}:{self.https.server_port}"

    @property
    def smtp_port(self) -> int:
        """Port of the SMTP catcher."""
        return int(self.smtp.port)

    def stop(self) -> None:
        """Shut every listener down and wait for the threads."""
        for server in (self.http, self.https):
            server.shutdown()
            server.server_close()
        self.smtp.stop()
        for thread in self.threads:
            thread.join(timeout=5)


def free_port() -> int:
    """A currently free TCP port on loopback (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_servers(
    app: Flask, port: int, tls_port: int, smtp_port: int, instance_dir: str | Path
) -> Servers:
    """Bind and start everything in background threads; port 0 picks a free port."""
    certificates = ensure_certificates(instance_dir)
    http = make_server(HOST, port, app, threaded=True, request_handler=QuietRequestHandler)
    https = make_server(
        HOST,
        tls_port,
        app,
        threaded=True,
        request_handler=QuietRequestHandler,
        ssl_context=server_ssl_context(certificates),
    )
    state: SandboxState = app.extensions["sandbox"]
    smtp = start_smtp(state.mail, smtp_port or free_port(), HOST)
    servers = Servers(http, https, smtp, certificates)
    with state.lock:
        state.initial_settings.http_url = state.settings.http_url = servers.http_url
        state.initial_settings.https_url = state.settings.https_url = servers.https_url
    for name, server in (("sandbox-http", http), ("sandbox-https", https)):
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        servers.threads.append(thread)
    return servers
