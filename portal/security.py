"""Per-request plumbing: request ids, security headers, the CSP htmx runs under, and access
logs with OAuth codes, states and tokens taken out (OA-14)."""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, g, request
from flask_login import current_user
from werkzeug.wrappers import Response

from .integrations.registry import providers

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
#: Query parameters whose values never reach a log line: the OAuth callback's code and state,
#: and any token or secret a client might put in a URL by mistake.
SECRET_PARAMETERS = re.compile(
    r"((?:^|[?&])(?:code|state|token|access_token|refresh_token|id_token|client_secret|"
    r"code_verifier|password)=)[^&#\s\"]*",
    re.IGNORECASE,
)


def redact_query(text: str) -> str:
    """``text`` (a request line or URL) with secret query values replaced by ``[redacted]``."""
    return SECRET_PARAMETERS.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Redacts secret query values in a record's message and string arguments.

    Werkzeug's development server logs each request line with its query string (``make run``,
    the browser tests): without this, "GET /slack/oauth/callback?code=…&state=…" would sit in
    the terminal and in CI logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):  # Werkzeug: ('"GET /…?code=… HTTP/1.1"', 302, '-')
            record.args = tuple(_redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):  # gunicorn: its access-log atoms ({'r': …, 'q': …})
            record.args = {key: _redact(value) for key, value in record.args.items()}
        return True


def _redact(value: object) -> object:
    return redact_query(value) if isinstance(value, str) else value


def redact_access_logs() -> None:
    """Install :class:`RedactSecrets` on Werkzeug's and gunicorn's access loggers, once."""
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(app: Flask) -> str:
    """The portal's CSP: scripts and styles from our origin only, nothing inline, no eval.

    ``form-action`` lists the providers' consent pages (``ChatProvider.consent_settings``)
    because browsers apply it to the redirect that follows a form post ("Add to Slack" posts to
    us, we answer 302 to Slack).
    """
    consent_origins = sorted(
        {
            _origin(app.config[key])
            for provider in providers.all()
            for key in provider.consent_settings
        }
    )
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self' " + " ".join(consent_origins),
        ]
    )


def init_app(app: Flask) -> None:
    csp = content_security_policy(app)
    redact_access_logs()

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)

    @app.after_request
    def set_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-Id"] = g.get("request_id", "")
        headers.setdefault("Content-Security-Policy", csp)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        # Pages of a signed-in user show integration state and links: never cache them.
        if current_user and current_user.is_authenticated:
            headers["Cache-Control"] = "no-store"
        return response
