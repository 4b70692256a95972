"""Per-request plumbing: request ids, security headers and the CSP htmx runs under."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, g, request
from flask_login import current_user
from werkzeug.wrappers import Response

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(app: Flask) -> str:
    """The portal's CSP: scripts and styles from our origin only, nothing inline, no eval.

    ``form-action`` lists the providers' consent pages because browsers apply it to the
    redirect that follows a form post ("Add to Slack" posts to us, we answer 302 to Slack).
    """
    consent_origins = sorted(
        {
            _origin(app.config[key])
            for key in ("SLACK_AUTHORIZE_URL", "CHATWORK_AUTHORIZE_URL", "MS_CONSENT_URL")
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
