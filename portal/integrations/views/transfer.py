"""CSV of links: export, upload with a preview, apply (admins of the organization only)."""

from __future__ import annotations

import os
import secrets
import time

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ...accounts.permissions import Permission, require
from ...accounts.tenancy import current_organization
from ...inbound import body_limit
from .. import bp, transfer
from ..models import Integration
from .common import get_integration_or_404, get_provider_or_404

#: An uploaded file waits this long for "apply" before it must be uploaded again.
UPLOAD_MAX_AGE = 30 * 60
#: The one route that takes more than the default body limit: a CSV of up to 50 MB is read to
#: report its real size before it is refused (transfer.MAX_BYTES), plus the form around it.
UPLOAD_REQUEST_BYTES = 60 * 1024 * 1024


def _integration(provider: str) -> Integration:
    return get_integration_or_404(current_organization(), get_provider_or_404(provider))


def _upload_dir() -> str:
    path = os.path.join(current_app.instance_path, "link-imports")
    os.makedirs(path, exist_ok=True)
    return path


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="links-import")


def _store(integration: Integration, data: bytes) -> str:
    """Keep the upload server-side until applied; the browser only holds a signed token."""
    folder = _upload_dir()
    for name in os.listdir(folder):  # forget abandoned uploads
        path = os.path.join(folder, name)
        if os.path.getmtime(path) < time.time() - UPLOAD_MAX_AGE:
            os.unlink(path)
    name = secrets.token_hex(16)
    with open(os.path.join(folder, name), "wb") as handle:
        handle.write(data)
    return _signer().dumps([integration.id, current_user.id, name, transfer.fingerprint(data)])


def _load(integration: Integration, token: str) -> tuple[str, bytes] | None:
    try:
        integration_id, user_id, name, digest = _signer().loads(token, max_age=UPLOAD_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return None
    if integration_id != integration.id or user_id != current_user.id:
        return None
    path = os.path.join(_upload_dir(), os.path.basename(str(name)))
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if transfer.fingerprint(data) != digest:
        return None
    return path, data


@bp.get("/settings/integrations/<provider>/links")
@require(Permission.MANAGE_INTEGRATIONS)
def transfer_page(provider: str) -> ResponseReturnValue:
    """Export the links, or upload a CSV to preview an import."""
    integration = _integration(provider)
    return render_template("integrations/transfer.html", integration=integration, plan=None)


@bp.get("/settings/integrations/<provider>/links.csv")
@require(Permission.MANAGE_INTEGRATIONS)
def export_links(provider: str) -> Response:
    """The links as CSV (UTF-8 with BOM), streamed; the export is audited."""
    integration = _integration(provider)
    transfer.record_export(integration, current_organization())
    filename = f"{integration.provider}-links.csv"
    return Response(
        stream_with_context(transfer.export_lines(integration)),
        # content_type, not mimetype: Werkzeug appends the charset to a mimetype once more.
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/settings/integrations/<provider>/links/import")
@body_limit(UPLOAD_REQUEST_BYTES)
@require(Permission.MANAGE_INTEGRATIONS)
def import_links(provider: str) -> ResponseReturnValue:
    """Validate the uploaded CSV and show what applying it would change (nothing changes)."""
    integration = _integration(provider)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV file first."), "error")
        return redirect(url_for("integrations.transfer_page", provider=provider))
    try:
        data = upload.stream.read(transfer.MAX_BYTES + 1)
        if len(data) > transfer.MAX_BYTES:
            # Only to report the real size; bounded by UPLOAD_REQUEST_BYTES.
            data += upload.stream.read()
    finally:
        upload.close()
    plan = transfer.plan_import(integration, data)
    token = _store(integration, data) if plan.ok and plan.changes else None
    return (
        render_template(
            "integrations/transfer.html",
            integration=integration,
            plan=plan,
            token=token,
            filename=upload.filename,
        ),
        200 if plan.ok else 422,
    )


@bp.post("/settings/integrations/<provider>/links/apply")
@require(Permission.MANAGE_INTEGRATIONS)
def apply_links(provider: str) -> ResponseReturnValue:
    """Apply the previewed file: recomputed against the current links, one transaction."""
    integration = _integration(provider)
    loaded = _load(integration, request.form.get("token", ""))
    if loaded is None:
        flash(_("The preview expired. Upload the file again."), "error")
        return redirect(url_for("integrations.transfer_page", provider=provider))
    path, data = loaded
    plan = transfer.apply_import(integration, data, actor=current_user._get_current_object())
    if not plan.ok:
        # The links changed since the preview and the file no longer applies cleanly.
        return (
            render_template(
                "integrations/transfer.html",
                integration=integration,
                plan=plan,
                token=None,
                filename="",
            ),
            422,
        )
    os.unlink(path)
    flash(
        _(
            "Imported: %(added)s added, %(changed)s changed, %(removed)s removed.",
            added=len(plan.added),
            changed=len(plan.changed),
            removed=len(plan.removed),
        ),
        "success",
    )
    return redirect(url_for("integrations.members", provider=provider))
