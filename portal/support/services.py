"""What support staff read: member search, a member's link history and deliveries, the
"why didn't they get it?" explanation, and integration health. Read-only by construction:
nothing here writes except the audit of the search itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..audit.models import AuditEvent
from ..database import utcnow
from ..extensions import db
from ..integrations.models import AccountLink, Integration, IntegrationState
from ..integrations.registry import providers
from ..notifications.explain import explain_outcome, explain_reason, provider_name
from ..notifications.models import Delivery, DeliveryState, Notification
from ..notifications.transports import transports
from ..paging import contains_ci
from . import events as _events  # noqa: F401

SEARCH_LIMIT = 50
#: Warn this many days before a token or client secret expires.
EXPIRY_WARNING_DAYS = 14


def search_members(query: str) -> list[tuple[User, Organization]]:
    """Members of any organization whose name or e-mail contains ``query`` (audited)."""
    query = query.strip()
    if len(query) < 2:
        return []
    rows = [
        (user, organization)
        for user, organization in db.session.execute(
            select(User, Organization)
            .join(Organization, Organization.id == User.organization_id)
            .where(or_(contains_ci(User.email, query), contains_ci(User.name, query)))
            .order_by(Organization.slug, User.name, User.id)
            .limit(SEARCH_LIMIT)
        ).tuples()
    ]
    audit.record(
        "support.searched",
        data={
            "query": query[:200],
            "results": len(rows),
            "organizations": sorted({o.slug for _u, o in rows}),
        },
    )
    db.session.commit()
    return rows


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    action: str
    actor: str | None
    provider: str | None
    account: str | None
    external_id: str | None
    method: str | None
    detail: str = ""


_HISTORY_ACTIONS = (
    "link.created",
    "link.removed",
    "link.flagged",
    "link.confirmed",
    "link.disowned",
    "links.imported",
)


def link_history(organization: Organization, user: User, limit: int = 100) -> list[HistoryEntry]:
    """Who linked what to this member, when and how, and every unlink, newest first."""
    link_ids = [
        str(i)
        for i in db.session.scalars(
            select(AccountLink.id).where(
                AccountLink.user_id == user.id, AccountLink.organization_id == organization.id
            )
        )
    ]
    targets = [(AuditEvent.target_type == "user") & (AuditEvent.target_id == str(user.id))]
    if link_ids:
        targets.append((AuditEvent.target_type == "link") & AuditEvent.target_id.in_(link_ids))
    events = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.organization_id == organization.id,
            AuditEvent.action.in_(_HISTORY_ACTIONS),
            or_(*targets),
        )
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    ).all()
    entries = []
    for event in events:
        values: dict[str, Any] = {**(event.before or {}), **(event.after or {})}
        detail = ""
        if event.action == "link.flagged":
            detail = str(values.get("reason") or "")
        elif event.action == "link.created" and event.before:
            detail = _("replaced %(account)s", account=event.before.get("name") or "?")
        entries.append(
            HistoryEntry(
                at=event.occurred_at,
                action=event.action,
                actor=event.actor_label or _("System"),
                provider=values.get("provider"),
                account=values.get("name"),
                external_id=values.get("external_id"),
                method=values.get("method"),
                detail=detail,
            )
        )
    return entries


@dataclass(frozen=True)
class DeliveryLine:
    delivery: Delivery
    notification: Notification
    story: str
    route: str


def recent_deliveries(
    organization: Organization, user: User, limit: int = 30
) -> list[DeliveryLine]:
    """The member's latest deliveries, each explained in a sentence."""
    rows = db.session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(
            Notification.recipient_id == user.id,
            Notification.organization_id == organization.id,
        )
        .order_by(Delivery.id.desc())
        .limit(limit)
    ).tuples()
    return [
        DeliveryLine(
            d,
            n,
            explain_outcome(
                d.channel, d.state.value, d.last_error_code, d.attempts, d.reason, d.next_attempt_at
            ),
            explain_reason(d.reason, d.next_attempt_at),
        )
        for d, n in rows
    ]


def notification_or_none(
    organization: Organization, user: User, notification_id: int
) -> Notification | None:
    return db.session.scalar(
        select(Notification).where(
            Notification.id == notification_id,
            Notification.recipient_id == user.id,
            Notification.organization_id == organization.id,
        )
    )


def why_not(organization: Organization, user: User, notification: Notification) -> list[str]:
    """Plain sentences answering "why didn't this member get it?" for one notification."""
    lines: list[str] = []
    if not user.is_active:
        lines.append(_("The member's portal account is deactivated."))
    deliveries = list(notification.deliveries)
    if not deliveries:
        lines.append(_("Nothing was queued for this notification."))
    for delivery in deliveries:
        channel = provider_name(delivery.channel)
        story = explain_outcome(
            delivery.channel,
            delivery.state.value,
            delivery.last_error_code,
            delivery.attempts,
            delivery.reason,
            delivery.next_attempt_at,
        )
        if delivery.state is DeliveryState.SENT:
            transport = transports.get(delivery.channel)
            where = transport.destination(delivery, user) if transport else ""
            lines.append(
                _(
                    "%(channel)s: delivered %(where)s at %(when)s. If the member cannot find"
                    " it, it reached the provider — check the right account, muted DMs or the"
                    " spam folder.",
                    channel=channel,
                    where=where,
                    when=_when(delivery.sent_at),
                )
            )
        else:
            reason = explain_reason(delivery.reason)
            lines.append(
                f"{channel}: {story}" + (f" ({reason})" if reason and reason != story else "")
            )
        if delivery.state in (DeliveryState.RETRYING, DeliveryState.PENDING):
            lines.append(_("Next attempt at %(when)s.", when=_when(delivery.next_attempt_at)))
    return lines


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@dataclass
class Health:
    integration: Integration
    state: str
    last_success_at: datetime | None
    token_expires_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    warnings: list[str] = field(default_factory=list)
    linked: int = 0


def integration_warnings(integration: Integration, now: datetime | None = None) -> list[str]:
    """Warnings before credentials break: expiry soon, refresh failures, needs reconnect."""
    now = now or utcnow()
    soon = now + timedelta(days=EXPIRY_WARNING_DAYS)
    warnings = []
    if integration.state is IntegrationState.NEEDS_RECONNECT:
        warnings.append(_("Stopped working: reconnect it. Notifications go by e-mail until then."))
    provider = providers.get(integration.provider)
    expires = integration.token_expires_at
    # Tokens a provider renews by itself need no warning; only a failed renewal (last error,
    # "reconnect required") does.
    if (
        expires is not None
        and not (provider and provider.refreshes_tokens(integration))
        and expires <= soon
    ):
        warnings.append(
            _("The access token expires on %(when)s.", when=_when(expires))
            if expires > now
            else _("The access token expired on %(when)s.", when=_when(expires))
        )
    secret_expiry = provider.client_secret_expires_at(integration) if provider else None
    if secret_expiry is not None and secret_expiry <= soon:
        warnings.append(
            _("The client secret expires on %(when)s.", when=_when(secret_expiry))
            if secret_expiry > now
            else _("The client secret expired on %(when)s.", when=_when(secret_expiry))
        )
    if integration.last_error and integration.state is IntegrationState.CONNECTED:
        warnings.append(
            _(
                "Last error (%(when)s): %(error)s",
                when=_when(integration.last_error_at),
                error=integration.last_error,
            )
        )
    return warnings


def health(organization: Organization) -> list[Health]:
    """Every integration of the organization with its state, last send, expiry and last error."""
    integrations = db.session.scalars(
        select(Integration)
        .where(Integration.organization_id == organization.id)
        .order_by(Integration.provider)
    ).all()
    result = []
    for integration in integrations:
        last_sent = db.session.scalar(
            select(Delivery.sent_at)
            .where(
                Delivery.organization_id == organization.id,
                Delivery.integration_id == integration.id,
                Delivery.state == DeliveryState.SENT,
            )
            .order_by(Delivery.id.desc())
            .limit(1)
        )
        linked = db.session.scalar(
            select(db.func.count())
            .select_from(AccountLink)
            .where(AccountLink.integration_id == integration.id)
        )
        result.append(
            Health(
                integration=integration,
                state=integration.state.value,
                last_success_at=last_sent or integration.last_success_at,
                token_expires_at=integration.token_expires_at,
                last_error=integration.last_error,
                last_error_at=integration.last_error_at,
                warnings=integration_warnings(integration),
                linked=linked or 0,
            )
        )
    return result
