"""Error pages: a full page for navigations, a partial for HTMX, JSON under /api/."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from .extensions import db
from .htmx import is_partial_request
from .inbound import wants_json_errors

log = logging.getLogger(__name__)


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You do not have permission to do this."),
        404: _("The page was not found."),
        405: _("This action is not allowed here."),
        413: _("The upload is too large."),
        422: _("Please correct the highlighted fields."),
        429: _("Too many requests. Please wait a moment and try again."),
        500: _("Something went wrong on our side. The error has been logged."),
        503: _("The service is temporarily unavailable. Please try again shortly."),
    }


def render_error(status: int, message: str | None = None) -> tuple[str | Response, int]:
    message = message or _messages().get(status, _("Error"))
    if wants_json_errors():
        return jsonify(error=f"http_{status}", detail=message), status
    template = "errors/_error.html" if is_partial_request() else "errors/error.html"
    return render_template(template, status=status, message=message), status


def _resource_exists() -> bool:
    """Whether the request's path names a resource at all. Werkzeug answers 405 for ``DELETE
    /api/v1/webhook-endpoints/0``: the GET rule's pattern matched before its converter refused
    the id. No such resource exists, so the answer is the 404 any unknown id gets."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        adapter.match(request.path, method="GET")
    except NotFound:
        return False
    except HTTPException:  # a rule matched for other methods only: it exists
        return True
    return True


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str | Response, int]:
        return render_error(
            400, _("The form expired or was sent from elsewhere. Reload the page and try again.")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | tuple[str | Response, int]:
        if error.code is None or error.code < 400:
            return error.get_response()
        if isinstance(error, MethodNotAllowed) and not _resource_exists():
            return render_error(404)
        custom = error.description if error.description != type(error).description else None
        return render_error(error.code, custom)

    @app.errorhandler(OperationalError)
    def database_down(error: OperationalError) -> tuple[str | Response, int]:
        # DL-10: while the database is restarting, answer 503 (retry later), not 500.
        db.session.rollback()
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return render_error(503)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str | Response, int]:
        log.exception("unhandled error")
        db.session.rollback()
        return render_error(500)
