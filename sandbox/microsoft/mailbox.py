"""Graph's mailbox settings: ``GET /v1.0/users/{id|upn}/mailboxSettings``.

- ``timeZone`` is a Windows name ("Tokyo Standard Time"), as Exchange keeps it, repeated in
  ``workingHours.timeZone.name``.
- Needs the application permission ``MailboxSettings.Read``: without it (``config``
  ``mailbox_settings_permission: false``) every call is 403 ``ErrorAccessDenied``.
- A user without an Exchange mailbox (no ``mail``; a guest) is 404
  ``MailboxNotEnabledForRESTAPI``; an unknown id 404 ``ErrorInvalidUser``.
- Throttled like every Graph call (the tenant's ``microsoft:graph`` bucket) and, as Outlook
  resources are, per mailbox (``microsoft:mailbox``, 10,000 per 10 minutes).
"""

from __future__ import annotations

from flask import Response, jsonify

from sandbox.microsoft.graph import GraphError, bp, tenant_of_request
from sandbox.microsoft.models import Tenant, TenantUser
from sandbox.state import current_state

PERMISSION = "MailboxSettings.Read"
WORKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]


@bp.get("/v1.0/users/<key>/mailboxSettings")
def mailbox_settings(key: str) -> Response:
    """One user's mailbox settings."""
    state = current_state()
    with state.lock:
        tenant = tenant_of_request()
        if not state.settings.mailbox_settings_permission:
            raise GraphError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        user = _mailbox_user(tenant, key)
        bucket = f"microsoft:mailbox|{tenant.tenant_id}|{user.id}"
        decision = state.limiter.hit(bucket, state.settings.rate_rules("microsoft:mailbox"))
        if not decision.allowed:
            raise GraphError(
                429, "TooManyRequests", "Too many requests.", decision.retry_after_header
            )
        return jsonify(_settings(user))


def _mailbox_user(tenant: Tenant, key: str) -> TenantUser:
    user = tenant.by_id.get(key) or tenant.find_user(key)
    if user is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    if not user.has_mailbox:
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return user


def _settings(user: TenantUser) -> dict[str, object]:
    return {
        "@odata.context": (
            f"https://graph.microsoft.com/v1.0/$metadata#users('{user.id}')/mailboxSettings"
        ),
        "timeZone": user.time_zone,
        "dateFormat": "yyyy/MM/dd",
        "timeFormat": "H:mm",
        "userPurpose": "user",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "automaticRepliesSetting": {"status": "disabled", "externalAudience": "all"},
        "language": {"locale": "ja-JP", "displayName": "日本語 (日本)"},
        "workingHours": {
            "daysOfWeek": WORKDAYS,
            "startTime": "09:00:00.0000000",
            "endTime": "18:00:00.0000000",
            "timeZone": {"name": user.time_zone},
        },
    }
