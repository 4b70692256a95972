"""Graph's Teams app catalog and per-user app installation (proactive install).

- ``GET /v1.0/appCatalogs/teamsApps?$filter=externalId eq '{manifest id}'``: the app's id in
  the tenant's org catalog (it changes when the admin uploads the app again).
- ``GET /v1.0/users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '…'``.
- ``POST /v1.0/users/{id}/teamwork/installedApps`` with ``teamsApp@odata.bind``: 201; 409 when
  already installed; 403 when an app permission policy blocks the user or the consent lacks
  ``TeamsAppInstallation.ReadWriteSelfForUser.All``; 404 for an id not in the catalog; 429
  over 30 requests/s per app per tenant (GETs: 60/s). Teams then tells the bot
  (``conversationUpdate``), a moment later, as the real service does.
- ``GET /v1.0/users/{id}/teamwork/installedApps/{installation id}/chat``: the personal chat.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

from flask import Response, jsonify, request

from sandbox.config import TEAMS_MANIFEST_ID
from sandbox.microsoft import teams
from sandbox.microsoft.graph import GraphError, bp, tenant_of_request
from sandbox.microsoft.models import Tenant, TenantUser
from sandbox.state import SandboxState, current_state

PERMISSION = "TeamsAppInstallation.ReadWriteSelfForUser.All"
_EXTERNAL_ID = re.compile(r"^externalId eq '([^']{1,100})'$")
_APP_ID = re.compile(r"^teamsApp/id eq '([^']{1,100})'$")
_BIND = re.compile(r"/appCatalogs/teamsApps/([^/?#]{1,100})$")


def _tenant(bucket: str) -> Tenant:
    """The caller's tenant, with the install permission and the bucket's rate limit."""
    state = current_state()
    tenant = tenant_of_request()
    if not state.settings.teams_install_permission:
        raise GraphError(
            403,
            "Forbidden",
            f"Missing role permissions on the request. API requires one of '{PERMISSION}'.",
        )
    decision = state.limiter.hit(f"{bucket}|{tenant.tenant_id}", state.settings.rate_rules(bucket))
    if not decision.allowed:
        raise GraphError(429, "TooManyRequests", "Too many requests.", decision.retry_after_header)
    return tenant


def _user(tenant: Tenant, key: str) -> TenantUser:
    found = tenant.by_id.get(key)
    if found is None:
        raise GraphError(404, "NotFound", f"User '{key}' was not found.")
    return found


def _app(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.app_catalog_id,
        "externalId": TEAMS_MANIFEST_ID,
        "displayName": "Wistant",
        "distributionMethod": "organization",
    }


def installation_id(tenant: Tenant, user: TenantUser) -> str:
    """Graph's opaque installation id (base64 of the user and the app)."""
    raw = f"{user.id}##{tenant.app_catalog_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@bp.get("/v1.0/appCatalogs/teamsApps")
def catalog() -> Response:
    """The org catalog, filtered by the manifest id (the only query the portal makes)."""
    state = current_state()
    match = _EXTERNAL_ID.match(request.args.get("$filter", ""))
    if match is None:
        raise GraphError(400, "BadRequest", "Only $filter=externalId eq '…' is supported.")
    with state.lock:
        tenant = _tenant("microsoft:installedApps:get")
        found = tenant.app_catalog_id and match.group(1) == TEAMS_MANIFEST_ID
        return jsonify(value=[_app(tenant)] if found else [])


@bp.get("/v1.0/users/<user_id>/teamwork/installedApps")
def installed_apps(user_id: str) -> Response:
    """The user's installations of the app (filtered by its catalog id)."""
    state = current_state()
    match = _APP_ID.match(request.args.get("$filter", ""))
    with state.lock:
        tenant = _tenant("microsoft:installedApps:get")
        user = _user(tenant, user_id)
        ours = match is None or match.group(1) == tenant.app_catalog_id
        value = (
            [{"id": installation_id(tenant, user), "teamsApp": _app(tenant)}]
            if user.bot_installed and ours
            else []
        )
        return jsonify(value=value)


@bp.post("/v1.0/users/<user_id>/teamwork/installedApps")
def install(user_id: str) -> tuple[Response, int] | tuple[str, int]:
    """Install the app for one user; Teams then tells the bot."""
    state = current_state()
    body = request.get_json(silent=True)
    bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
    match = _BIND.search(bind) if isinstance(bind, str) else None
    if match is None:
        raise GraphError(400, "BadRequest", "teamsApp@odata.bind is required.")
    with state.lock:
        tenant = _tenant("microsoft:installedApps:post")
        user = _user(tenant, user_id)
        if not tenant.app_catalog_id or match.group(1) != tenant.app_catalog_id:
            raise GraphError(404, "NotFound", "The app was not found in the catalog.")
        if user.id in tenant.install_blocked:
            raise GraphError(
                403,
                "Forbidden",
                "The app is blocked for this user by the organization's app permission policy.",
            )
        if user.bot_installed:
            raise GraphError(409, "Conflict", "The app is already installed for this user.")
        user.bot_installed, user.bot_blocked = True, False
        activities = teams.install_activities(state, tenant, user)
    # Teams tells the bot after answering the installer, from its own side.
    threading.Thread(target=_tell_bot, args=(state, activities), daemon=True).start()
    return "", 201


def _tell_bot(state: SandboxState, activities: list[dict[str, Any]]) -> None:
    for activity in activities:
        teams.deliver(state, activity)


@bp.get("/v1.0/users/<user_id>/teamwork/installedApps/<installation>/chat")
def installation_chat(user_id: str, installation: str) -> Response:
    """The one-on-one chat between the user and the bot."""
    state = current_state()
    with state.lock:
        tenant = _tenant("microsoft:installedApps:get")
        user = _user(tenant, user_id)
        if not user.bot_installed or installation != installation_id(tenant, user):
            raise GraphError(404, "NotFound", "The installation was not found.")
        return jsonify(id=user.conversation_id, chatType="oneOnOne", tenantId=tenant.tenant_id)
