"""Graph's JSON batching: ``POST /v1.0/$batch`` with ``{"requests": [{"id", "method", "url",
"headers"?, "body"?}]}``, 20 at most, each ``url`` relative to ``/v1.0``.

Each request is served by the sandbox's own Graph routes with the batch's token, so it is
authenticated, throttled (429 + ``Retry-After`` in its own ``headers``), logged, counted and
open to faults exactly as if it had been sent alone; the batch itself only needs a valid
token and is not counted against the limits (Graph evaluates the requests individually).
Graph hands Outlook up to four requests of a batch at a time: so does the sandbox.
``dependsOn`` is not modelled.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, Response, current_app, jsonify, request

from sandbox.microsoft.graph import GraphError, authenticated, bp

MAX_REQUESTS = 20
IN_PARALLEL = 4
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


@bp.post("/v1.0/$batch")
def batch() -> Response:
    """Serve up to 20 Graph requests; every answer is in ``responses`` with its id."""
    authenticated()
    items = _requests(request.get_json(silent=True))
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    authorization = request.headers.get("Authorization", "")
    with ThreadPoolExecutor(IN_PARALLEL) as pool:
        answers = list(pool.map(lambda item: _serve(app, item, authorization), items))
    return jsonify(responses=answers)


def _requests(body: object) -> list[dict[str, Any]]:
    """The batch's requests, checked as Graph checks them (the whole batch is a 400)."""
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise GraphError(400, "BadRequest", f"Limit of {MAX_REQUESTS} requests exceeded.")
    seen: set[str] = set()
    for item in items:
        valid = (
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and item.get("method") in METHODS
            and isinstance(item.get("url"), str)
            and not item["url"].lower().startswith(("http:", "https:", "//"))
            and isinstance(item.get("headers", {}), dict)
        )
        if not valid or item["id"] in seen:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        seen.add(item["id"])
    return items


def _serve(app: Flask, item: dict[str, Any], authorization: str) -> dict[str, Any]:
    """One request through the app, as if sent alone; its answer in batch form."""
    path = item["url"].lstrip("/")
    if path.startswith("$batch"):
        nested = {"code": "BadRequest", "message": "Nested batches are not supported."}
        return _answer(item["id"], 400, {"error": nested})
    headers = {str(k): str(v) for k, v in (item.get("headers") or {}).items()}
    headers["Authorization"] = authorization
    response = app.test_client().open(
        f"{bp.url_prefix}/v1.0/{path}",
        method=item["method"],
        headers=headers,
        json=item.get("body"),
    )
    retry_after = response.headers.get("Retry-After")
    extra = {"Retry-After": retry_after} if retry_after else {}
    return _answer(item["id"], response.status_code, response.get_json(silent=True), extra)


def _answer(
    request_id: str, status: int, body: object, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": request_id,
        "status": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
    }
    if body is not None:
        answer["body"] = body
    return answer
