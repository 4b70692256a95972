"""「Webhook」 settings: endpoints, their secret (shown once), rotation, test events, attempt log.

Thin views over :mod:`.endpoints` (validation, saving, audit) and :mod:`.sender` (replay).
A new or rotated secret is rendered into the response that made it and nowhere else — not a
flash message, not the session — so it cannot be shown twice.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import User
from ..accounts.permissions import Permission, require
from ..accounts.tenancy import current_organization
from ..database import utcnow
from ..extensions import db
from ..htmx import is_partial_request
from ..notifications.explain import STATE_LABELS
from ..notifications.models import DeliveryState
from ..paging import positive_id
from . import endpoints, events, sender
from .endpoints import EndpointError
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

bp = Blueprint("webhooks", __name__)

LOG_PAGE = 50
REPLAYABLE = (DeliveryState.DEAD, DeliveryState.FAILED)
WAITING = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING)


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = endpoints.get(current_organization(), endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


def _fields() -> endpoints.Fields:
    form = request.form
    return endpoints.validate(
        form.get("url", ""),
        form.get("description", ""),
        endpoints.checked_types(form.getlist("event_types")),
        form.get("include_content") == "on",
    )


def _values() -> dict[str, Any]:
    """What the admin typed, to show back with an error."""
    form = request.form
    return {
        "url": form.get("url", "")[:2000],
        "description": form.get("description", "")[:200],
        "event_types": form.getlist("event_types"),
        "include_content": form.get("include_content") == "on",
    }


@bp.route("/settings/webhooks", methods=["GET", "POST"])
@require(Permission.MANAGE_ORGANIZATION)
def index() -> ResponseReturnValue:
    """The organization's endpoints and the form to add one; a new secret is shown once."""
    organization = current_organization()
    error: EndpointError | None = None
    created: tuple[WebhookEndpoint, str] | None = None
    values: dict[str, Any] = {"event_types": list(events.TYPES), "include_content": False}
    if request.method == "POST":
        try:
            created = endpoints.create(organization, _actor(), _fields())
        except EndpointError as problem:
            error, values = problem, _values()
    status = 422 if error else 200
    return render_template(
        "webhooks/index.html",
        endpoints=endpoints.for_organization(organization),
        types=events.TYPES,
        values=values,
        error=error,
        created=created,
        require_https=bool(_config("WEBHOOK_REQUIRE_HTTPS")),
    ), status


def _config(name: str) -> Any:
    return current_app.config[name]


def _log(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """One page of the endpoint's attempt log, newest first (keyset on the attempt id)."""
    before = positive_id("before")
    query = (
        select(WebhookAttempt, WebhookDelivery, WebhookEvent)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookAttempt.endpoint_id == endpoint.id,
            WebhookAttempt.organization_id == endpoint.organization_id,
        )
        .order_by(WebhookAttempt.id.desc())
        .limit(LOG_PAGE + 1)
    )
    if before is not None:
        query = query.where(WebhookAttempt.id < before)
    rows = list(db.session.execute(query).tuples())
    more = len(rows) > LOG_PAGE
    rows = rows[:LOG_PAGE]
    # A row a worker is sending counts too: its attempt is written only when the answer
    # comes, and a page rendered in between must keep polling or it would never show it.
    waiting = db.session.scalars(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.state.in_(WAITING),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(5)
    ).all()
    return {
        "rows": rows,
        "older": rows[-1][0].id if more and rows else None,
        "first_page": before is None,
        "waiting": waiting,
        "replayable": REPLAYABLE,
        "state_labels": STATE_LABELS,
    }


@bp.get("/settings/webhooks/<int:endpoint_id>")
@require(Permission.MANAGE_ORGANIZATION)
def detail(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    log = _log(endpoint)
    if is_partial_request():
        return render_template("webhooks/_log.html", endpoint=endpoint, **log)
    return _detail_page(endpoint, log=log)


def _detail_page(
    endpoint: WebhookEndpoint,
    *,
    log: dict[str, Any] | None = None,
    new_secret: str | None = None,
    error: EndpointError | None = None,
    values: dict[str, Any] | None = None,
) -> tuple[str, int]:
    values = values or {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types or []),
        "include_content": endpoint.include_content,
    }
    return render_template(
        "webhooks/detail.html",
        endpoint=endpoint,
        types=events.TYPES,
        values=values,
        error=error,
        new_secret=new_secret,
        now=utcnow(),
        require_https=bool(_config("WEBHOOK_REQUIRE_HTTPS")),
        **(log or _log(endpoint)),
    ), (422 if error else 200)


@bp.post("/settings/webhooks/<int:endpoint_id>")
@require(Permission.MANAGE_ORGANIZATION)
def update(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    try:
        endpoints.update(endpoint, _actor(), _fields())
    except EndpointError as problem:
        db.session.rollback()
        return _detail_page(endpoint, error=problem, values=_values())
    flash(_("The endpoint was saved."), "success")
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/settings/webhooks/<int:endpoint_id>/rotate")
@require(Permission.MANAGE_ORGANIZATION)
def rotate(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    secret = endpoints.rotate(endpoint, _actor())
    return _detail_page(endpoint, new_secret=secret)


@bp.post("/settings/webhooks/<int:endpoint_id>/enabled")
@require(Permission.MANAGE_ORGANIZATION)
def set_enabled(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    choice = request.form.get("enabled")
    if choice not in ("on", "off"):
        abort(400, description=_("Choose on or off."))
    endpoints.set_enabled(endpoint, _actor(), choice == "on")
    flash(
        _("The endpoint is on: new events are sent to it.")
        if endpoint.enabled
        else _("The endpoint is off: new events are not sent to it."),
        "success",
    )
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/settings/webhooks/<int:endpoint_id>/test")
@require(Permission.MANAGE_ORGANIZATION)
def send_test(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    event = endpoints.send_test(endpoint, _actor())
    flash(
        _(
            "A test event (webhook-id %(id)s) was queued. Its attempt appears in the log below.",
            id=event.message_id,
        ),
        "success",
    )
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/settings/webhooks/<int:endpoint_id>/delete")
@require(Permission.MANAGE_ORGANIZATION)
def delete(endpoint_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    url = endpoint.url
    endpoints.delete(endpoint, _actor())
    flash(_("The endpoint %(url)s was deleted.", url=url), "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/settings/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay")
@require(Permission.MANAGE_ORGANIZATION)
def replay(endpoint_id: int, delivery_id: int) -> ResponseReturnValue:
    endpoint = _endpoint_or_404(endpoint_id)
    delivery = db.session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.organization_id == endpoint.organization_id,
        )
    )
    if delivery is None:
        abort(404)
    if delivery.state not in REPLAYABLE:
        abort(409, description=_("Only failed or dead deliveries can be sent again."))
    sender.replay(delivery, actor=_actor())
    flash(_("The event will be sent again with the same webhook-id."), "success")
    return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))
