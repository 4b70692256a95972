"""Adding, changing, rotating, testing and removing webhook endpoints: validation, the save
and its audit record in one place, used by the settings page and the API alike.

Each function commits and returns what the caller shows. A secret leaves this module twice only:
in the return value of :func:`create` and of :func:`rotate`, for the admin to copy once; it is
never stored in the clear, logged or shown again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..database import utcnow
from ..extensions import db
from . import events, sender, signing
from .addresses import UnsafeWebhookURL, check_resolved, check_url
from .models import WebhookEndpoint, WebhookEvent

#: Endpoints one organization may have.
MAX_ENDPOINTS = 10
MAX_DESCRIPTION = 200


class EndpointError(ValueError):
    """Bad input: ``field`` names the form field, the message says what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Fields:
    url: str
    description: str
    event_types: list[str]
    include_content: bool


def validate(url: Any, description: Any, event_types: Any, include_content: Any) -> Fields:
    """Check what an admin or the API sent; raise EndpointError on the first problem."""
    if not isinstance(url, str) or not url.strip():
        raise EndpointError("url", _("Enter the URL that receives the events."))
    config = current_app.config
    try:
        url = check_url(url, require_https=bool(config["WEBHOOK_REQUIRE_HTTPS"]))
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        check_resolved(
            parts.hostname or "", port, allow_loopback=bool(config["WEBHOOK_ALLOW_LOOPBACK"])
        )
    except UnsafeWebhookURL as refused:
        raise EndpointError("url", refused.reason) from None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise EndpointError(
            "description",
            _(
                "The description must be text of at most %(limit)d characters.",
                limit=MAX_DESCRIPTION,
            ),
        )
    if any(ord(c) < 32 for c in description):
        raise EndpointError("description", _("The description must be a single line of text."))
    if not isinstance(event_types, list | tuple) or not all(
        isinstance(t, str) for t in event_types
    ):
        raise EndpointError("event_types", _("Choose the events to receive."))
    unknown = sorted(set(event_types) - set(events.TYPES))
    if unknown:
        raise EndpointError(
            "event_types", _("Unknown event type: %(types)s", types=", ".join(unknown)[:200])
        )
    if not event_types:
        raise EndpointError("event_types", _("Choose at least one event to receive."))
    if not isinstance(include_content, bool):
        raise EndpointError("include_content", _("Include content must be true or false."))
    ordered = [t for t in events.TYPES if t in set(event_types)]
    return Fields(url, description.strip(), ordered, include_content)


def _describe(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
        "include_content": endpoint.include_content,
        "enabled": endpoint.enabled,
    }


def _target(endpoint: WebhookEndpoint) -> tuple[str, int, str]:
    return ("webhook_endpoint", endpoint.id, endpoint.url[:200])


def for_organization(organization: Organization) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == organization.id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get(organization: Organization, endpoint_id: int) -> WebhookEndpoint | None:
    """The organization's endpoint with this id, or None (never another organization's)."""
    return db.session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organization_id == organization.id
        )
    )


def create(
    organization: Organization, actor: User | None, fields: Fields
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; return it and its new secret (to show once)."""
    count = db.session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.organization_id == organization.id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise EndpointError(
            "url", _("An organization can have at most %(limit)d endpoints.", limit=MAX_ENDPOINTS)
        )
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        organization_id=organization.id,
        url=fields.url,
        description=fields.description,
        event_types=fields.event_types,
        include_content=fields.include_content,
        enabled=True,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(endpoint)
    db.session.flush()
    endpoint.set_secret(secret)
    audit.record(
        "webhook.endpoint_created",
        organization=organization,
        actor=actor,
        target=_target(endpoint),
        after=_describe(endpoint),
    )
    db.session.commit()
    return endpoint, secret


def update(endpoint: WebhookEndpoint, actor: User | None, fields: Fields) -> WebhookEndpoint:
    before = _describe(endpoint)
    endpoint.url = fields.url
    endpoint.description = fields.description
    endpoint.event_types = fields.event_types
    endpoint.include_content = fields.include_content
    changes = audit.changed(before, _describe(endpoint))
    if changes:
        audit.record(
            "webhook.endpoint_changed",
            organization=db.session.get(Organization, endpoint.organization_id),
            actor=actor,
            target=_target(endpoint),
            before=changes[0],
            after=changes[1],
        )
    db.session.commit()
    return endpoint


def set_enabled(endpoint: WebhookEndpoint, actor: User | None, enabled: bool) -> WebhookEndpoint:
    """Turn the endpoint on or off. Turning it on clears a 410's mark; events that failed while
    it was off stay in the log, replayable."""
    if endpoint.enabled == enabled:
        return endpoint
    before = {"enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason}
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else "admin"
    endpoint.disabled_at = None if enabled else utcnow()
    audit.record(
        "webhook.endpoint_enabled" if enabled else "webhook.endpoint_disabled",
        organization=db.session.get(Organization, endpoint.organization_id),
        actor=actor,
        target=_target(endpoint),
        before=before,
        after={"enabled": enabled},
    )
    db.session.commit()
    return endpoint


def rotate(endpoint: WebhookEndpoint, actor: User | None) -> str:
    """Give the endpoint a new secret; the old one keeps signing (both signatures are sent)
    for ``WEBHOOK_ROTATION_OVERLAP_HOURS``. Returns the new secret, to show once."""
    overlap = timedelta(hours=float(current_app.config["WEBHOOK_ROTATION_OVERLAP_HOURS"]))
    secret = signing.new_secret()
    endpoint.set_secret(secret, keep_previous_until=utcnow() + overlap)
    audit.record(
        "webhook.secret_rotated",
        organization=db.session.get(Organization, endpoint.organization_id),
        actor=actor,
        target=_target(endpoint),
        data={"old_secret_signs_until": (utcnow() + overlap).isoformat()},
    )
    db.session.commit()
    return secret


def send_test(endpoint: WebhookEndpoint, actor: User | None) -> WebhookEvent:
    """Queue a ``webhook.test`` event to this endpoint alone and wake a worker."""
    event = events.emit_test(endpoint)
    audit.record(
        "webhook.test_sent",
        organization=db.session.get(Organization, endpoint.organization_id),
        actor=actor,
        target=_target(endpoint),
    )
    db.session.commit()
    sender.wake()
    return event


def delete(endpoint: WebhookEndpoint, actor: User | None) -> None:
    """Remove the endpoint with its queue and log (cascade)."""
    audit.record(
        "webhook.endpoint_deleted",
        organization=db.session.get(Organization, endpoint.organization_id),
        actor=actor,
        target=_target(endpoint),
        before=_describe(endpoint),
    )
    db.session.delete(endpoint)
    db.session.commit()


def checked_types(values: Iterable[str]) -> list[str]:
    """The event types of a form's checkboxes, in catalog order (unknown ones kept, so
    :func:`validate` can name them)."""
    chosen = list(dict.fromkeys(values))
    return [t for t in events.TYPES if t in chosen] + [t for t in chosen if t not in events.TYPES]
