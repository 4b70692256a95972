"""Helpers shared by the browser-facing consent and registration pages."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import redirect, render_template
from werkzeug.wrappers import Response

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def is_registered_redirect(uri: str, portal_url: str) -> bool:
    """Whether the sandbox app "registered" this redirect URI.

    The real apps list exact URLs; the sandbox accepts any http(s) URL on the portal's host or on
    loopback, so the portal can run on any free port in tests.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        return False
    return parts.hostname in LOOPBACK_HOSTS or parts.netloc == urlsplit(portal_url).netloc


def with_query(url: str, params: dict[str, str | None]) -> str:
    """`url` with `params` added to its query string (None values are left out)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect_to(url: str, params: dict[str, str | None]) -> Response:
    """A 302 back to the client with `params` in the query."""
    return redirect(with_query(url, params), code=302)


def error_page(
    title: str, message: str, status: int = 400, brand: str = "sandbox", code: str = ""
) -> tuple[str, int]:
    """A provider-styled HTML error page (no redirect: the user goes back with the browser)."""
    return render_template(
        "error.html", title=title, message=message, brand=brand, code=code
    ), status
