"""``/me/security``: set up, or turn off, two-step verification (TOTP) for one's own account.

Roles in ``MFA_REQUIRED_ROLES`` are sent here after sign-in until they have set it up.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from ..accounts.models import User
from ..audit import service as audit
from ..auth import mfa
from ..auth.forms import CodeForm
from ..extensions import db
from ..htmx import redirect_page
from . import bp

#: What an account that must enrol may still open (everything else redirects here).
ALLOWED_BEFORE_ENROLMENT = frozenset(
    {
        "me.security",
        "me.security_start",
        "me.security_confirm",
        "auth.logout",
        "main.set_language",
        "main.healthz",
        "static",
    }
)


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _page(*, secret: str | None = None, form: CodeForm | None = None, status: int = 200) -> Any:
    user = _user()
    return (
        render_template(
            "me/security.html",
            enabled=mfa.is_enabled(user),
            required=mfa.is_required(user),
            secret=secret,
            uri=mfa.provisioning_uri(user, secret) if secret else None,
            form=form or CodeForm(),
        ),
        status,
    )


@bp.get("/me/security")
@login_required
def security() -> Any:
    """Whether two-step verification is on, with the way to set it up or turn it off."""
    return _page()


@bp.post("/me/security/mfa")
@login_required
def security_start() -> Any:
    """A new secret to add to the authenticator app; active once a code from it is entered."""
    if mfa.is_enabled(_user()):
        return redirect(url_for("me.security"))
    form = CodeForm(formdata=None)
    return _page(secret=mfa.begin_enrollment(_user()), form=form)


@bp.post("/me/security/mfa/confirm")
@login_required
def security_confirm() -> Any:
    """Check a code from the new secret, then turn two-step verification on."""
    user = _user()
    form = CodeForm()
    if user.mfa_secret is None or mfa.is_enabled(user):
        return redirect(url_for("me.security"))
    if form.validate_on_submit() and mfa.confirm_enrollment(user, form.code.data or ""):
        audit.record("user.mfa_enabled", organization=user.organization, actor=user)
        db.session.commit()
        flash(_("Two-step verification is on. Sign-ins now ask for a code."), "success")
        return redirect(url_for("me.security"))
    form.form_errors.append(_("That code is not valid. Enter the current code."))
    return _page(secret=mfa.pending_secret(user), form=form, status=422)


@bp.post("/me/security/mfa/disable")
@login_required
def security_disable() -> Any:
    """Turn it off, proving possession of the app with a current code."""
    user = _user()
    form = CodeForm()
    if not mfa.is_enabled(user):
        return redirect(url_for("me.security"))
    if not (form.validate_on_submit() and mfa.verify(user, form.code.data or "")):
        db.session.rollback()
        form.form_errors.append(_("That code is not valid. Enter the current code."))
        return _page(form=form, status=422)
    mfa.disable(user)
    audit.record("user.mfa_disabled", organization=user.organization, actor=user)
    db.session.commit()
    flash(_("Two-step verification is off."), "success")
    return redirect(url_for("me.security"))


@bp.before_app_request
def require_enrolment() -> Response | None:
    """Roles that must use a second factor can do nothing else until they have set one up."""
    if not current_user.is_authenticated or request.endpoint in ALLOWED_BEFORE_ENROLMENT:
        return None
    user = _user()
    if mfa.is_required(user) and not mfa.is_enabled(user):
        flash(_("Your role requires two-step verification: set it up to continue."), "error")
        return redirect_page(url_for("me.security"))
    return None
