"""graph.microsoft.com stand-in: `GET /v1.0/users` (paged), `/v1.0/users/{id}`,
`/v1.0/organization` (and, in ``teamwork.py``, the app catalog and per-user installs).

Paging follows Graph: default page 100, `$top` 1-999, `@odata.nextLink` is a full URL with an
opaque `$skiptoken`. `$filter` is not supported (the portal lists and matches locally).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from sandbox.config import GRAPH_RESOURCE
from sandbox.microsoft.models import GRAPH_DEFAULT_FIELDS, GRAPH_EXTRA_FIELDS, Tenant
from sandbox.microsoft.tokens import TokenRejected, check_bearer
from sandbox.state import IssuedToken, current_state
from sandbox.traffic import bearer_token

bp = Blueprint("microsoft_graph", __name__, url_prefix="/microsoft/graph")

DEFAULT_PAGE = 100
MAX_PAGE = 999


class GraphError(Exception):
    """A Graph error: `{"error": {"code", "message"}}` with a status."""

    def __init__(self, status: int, code: str, message: str, retry_after: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


@bp.errorhandler(GraphError)
def _graph_error(failure: GraphError) -> tuple[Response, int]:
    body = {"error": {"code": failure.code, "message": failure.message, "innerError": {}}}
    response = jsonify(body)
    if failure.retry_after:
        response.headers["Retry-After"] = failure.retry_after
    return response, failure.status


def authenticated() -> IssuedToken:
    """The request's Graph token, or 401."""
    try:
        return check_bearer(current_state(), bearer_token(), GRAPH_RESOURCE)
    except TokenRejected as rejected:
        raise GraphError(401, "InvalidAuthenticationToken", str(rejected)) from rejected


def tenant_of_request() -> Tenant:
    """Authenticate the Graph token, apply the tenant's rate limit, return its tenant."""
    state = current_state()
    record = authenticated()
    decision = state.limiter.hit(
        f"microsoft:graph|{record.owner}", state.settings.rate_rules("microsoft:graph")
    )
    if not decision.allowed:
        raise GraphError(429, "TooManyRequests", "Too many requests.", decision.retry_after_header)
    return state.microsoft.tenants[record.owner]


def _select() -> list[str] | None:
    raw = request.args.get("$select")
    if not raw:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    for name in fields:
        if name not in GRAPH_DEFAULT_FIELDS + GRAPH_EXTRA_FIELDS:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
    return fields


def _page_size() -> int:
    raw = request.args.get("$top")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
        )
    return int(raw)


def _offset() -> int:
    raw = request.args.get("$skiptoken")
    if raw is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise GraphError(400, "Directory_InvalidSkipToken", "Invalid skip token.") from error


@bp.get("/v1.0/users")
def users() -> Response:
    """One page of the tenant's users."""
    state = current_state()
    if "$skip" in request.args:
        raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    if "$filter" in request.args:
        raise GraphError(
            400, "Request_UnsupportedQuery", "$filter is not supported by the sandbox."
        )
    with state.lock:
        tenant = tenant_of_request()
        select, size, offset = _select(), _page_size(), _offset()
        page = tenant.users[offset : offset + size]
        more = offset + size < len(tenant.users)
        values = [user.graph(select) for user in page]
    context = "https://graph.microsoft.com/v1.0/$metadata#users"
    body: dict[str, Any] = {
        "@odata.context": context + (f"({','.join(select)})" if select else ""),
        "value": values,
    }
    if more:
        token = base64.urlsafe_b64encode(json.dumps({"o": offset + size}).encode()).decode()
        query = {"$top": str(size), "$skiptoken": token}
        if select:
            query["$select"] = ",".join(select)
        body["@odata.nextLink"] = f"{request.base_url}?{urlencode(query)}"
    return jsonify(body)


@bp.get("/v1.0/users/<key>")
def user(key: str) -> Response:
    """One user by object id or userPrincipalName."""
    state = current_state()
    with state.lock:
        tenant = tenant_of_request()
        found = tenant.by_id.get(key) or tenant.find_user(key)
        if found is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its "
                "queried reference-property objects are not present.",
            )
        return jsonify(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                **found.graph(_select()),
            }
        )


@bp.get("/v1.0/organization")
def organization() -> Response:
    """The tenant's organization (display name and verified domain)."""
    state = current_state()
    with state.lock:
        tenant = tenant_of_request()
        item = {
            "id": tenant.tenant_id,
            "displayName": tenant.name,
            "verifiedDomains": [{"name": tenant.domain, "isDefault": True, "type": "Managed"}],
        }
    return jsonify(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#organization",
            "value": [item],
        }
    )
