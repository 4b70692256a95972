"""Request hooks: name each request's operation, inject latency and faults, log it.

Operation names are what the control API matches faults, latency and counts on:
`slack:<method>` for the Web API, otherwise `<provider>:<METHOD> <path with ids as {id}>`.
"""

from __future__ import annotations

import re
import time

from flask import Flask, Response, g, jsonify, request

from sandbox.state import LoggedRequest, current_state

_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f-]{36}|a:.*|29:.*|28:.*|[A-Z][A-Z0-9]{8,})$")
_UNLOGGED = ("/static/", "/favicon.ico")


def operation_for(method: str, path: str) -> str:
    """The operation name of a request."""
    if path.startswith("/slack/api/"):
        return "slack:" + path.removeprefix("/slack/api/")
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "inspector:GET /"
    provider, rest = parts[0], parts[1:]
    if provider not in ("slack", "chatwork", "microsoft", "_control"):
        provider, rest = "inspector", parts
    normalized = ["{id}" if _ID_SEGMENT.match(p) else p for p in rest]
    return f"{provider}:{method} /" + "/".join(normalized)


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer` header, if present."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def init_app(app: Flask) -> None:
    """Install the hooks on the sandbox app."""
    app.before_request(_before)
    app.after_request(_after)


def _before() -> Response | tuple[Response, int] | None:
    g.started = time.monotonic()
    g.operation = operation_for(request.method, request.path)
    if request.path.startswith(("/_control", *_UNLOGGED)) or g.operation.startswith("inspector"):
        return None
    state = current_state()
    delay = state.settings.latency_for(g.operation)
    if delay > 0:
        time.sleep(delay)
    status = state.take_fault(g.operation, request.path)
    if status is not None:
        return _fault_response(g.operation, status)
    return None


def _fault_response(operation: str, status: int) -> tuple[Response, int]:
    """An injected failure, in the provider's error format."""
    if operation.startswith("slack:"):
        return jsonify(ok=False, error="fatal_error"), status
    if operation.startswith("chatwork:"):
        return jsonify(errors=["Internal server error (injected by the sandbox)"]), status
    body = {"error": {"code": "ServiceError", "message": "Injected by the sandbox"}}
    return jsonify(body), status


def _after(response: Response) -> Response:
    if request.path.startswith(("/_control", *_UNLOGGED)):
        return response
    operation = g.get("operation") or operation_for(request.method, request.path)
    if operation.startswith("inspector"):
        return response
    token = bearer_token() or request.values.get("token") or ""
    entry = LoggedRequest(
        at=time.time(),
        method=request.method,
        path=request.path,  # never the query string: it may carry secrets
        operation=operation,
        status=response.status_code,
        duration_ms=round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
        token_suffix=("…" + token[-6:]) if token else "",
    )
    state = current_state()
    with state.lock:
        state.requests.appendleft(entry)
        state.request_counts[operation] += 1
    return response
