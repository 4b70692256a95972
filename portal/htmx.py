"""HTMX response helpers: page or partial, 422 for invalid forms, events, out-of-band flashes."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, get_flashed_messages, render_template, session
from werkzeug.wrappers import Response

from .extensions import htmx


def is_partial_request() -> bool:
    """An HTMX request for a region (not a boosted navigation, which wants the full page)."""
    return bool(htmx) and not htmx.boosted


def render_page_or_partial(page_template: str, partial_template: str, **context: Any) -> str:
    """The same URL answers with the full page or just the region it includes (contact-app)."""
    return render_template(partial_template if is_partial_request() else page_template, **context)


def trigger(response: Response, events: dict[str, Any]) -> Response:
    """Add ``HX-Trigger`` so listeners (lists, dialogs) react without the view knowing them."""
    existing = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    existing.update(events)
    response.headers["HX-Trigger"] = json.dumps(existing)
    return response


def redirect_page(location: str) -> Response:
    """Send the browser to ``location`` as a whole page: a region request (``HX-Redirect``)
    must not have another page swapped into the region it asked for."""
    if is_partial_request():
        return Response("", status=204, headers={"HX-Redirect": location})
    return Response("", status=303, headers={"Location": location})


def close_dialog(**events: Any) -> Response:
    """A successful dialog form: empty 200 that closes the dialog and fires ``events``."""
    return trigger(Response("", status=200), {"dialog:close": True, **events})


def init_app(app: Flask) -> None:
    @app.after_request
    def append_flash_oob(response: Response) -> Response:
        # Full pages render flashes themselves; HTMX partials get them as an out-of-band swap.
        if not is_partial_request() or not session.get("_flashes"):
            return response
        if response.mimetype != "text/html" or response.direct_passthrough:
            return response
        messages = get_flashed_messages(with_categories=True)
        oob = render_template("_partials/flash.html", messages=messages, oob=True)
        response.set_data(response.get_data(as_text=True) + oob)
        return response
