"""Sign-in (password, then a code when the user has a second factor) and sign-out."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from ..accounts.models import User
from ..extensions import db
from . import bp, mfa, services
from .forms import CodeForm, LoginForm

#: Between a correct password and its code: the user id and when, in the signed session cookie.
PENDING_KEY = "mfa_pending"
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str:
    """Only same-origin relative paths: ``//evil.example`` and absolute URLs are ignored (OA-13)."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
            and "\\" not in target
        ):
            return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form; sign in on POST."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.check_credentials(
                form.email.data or "", form.password.data or "", request.remote_addr or ""
            )
        except services.Throttled:
            form.form_errors.append(
                _("Too many failed sign-in attempts. Wait a minute and try again.")
            )
            return render_template("auth/login.html", form=form), 429
        except services.InvalidCredentials:
            form.form_errors.append(_("The e-mail address or password is incorrect."))
            return render_template("auth/login.html", form=form), 401
        target = _safe_next(request.args.get("next"))
        if mfa.is_enabled(user):
            session.clear()  # nothing from before survives; the session starts after the code
            session[PENDING_KEY] = {"user": user.id, "at": time.time(), "next": target}
            return redirect(url_for("auth.login_code"))
        services.open_session(user)
        return redirect(target)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


def _pending_user() -> tuple[User, str] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    user = db.session.get(User, int(pending.get("user", 0)))
    if user is None or not mfa.is_enabled(user):
        return None
    return user, str(pending.get("next") or url_for("main.home"))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | Response | tuple[str, int]:
    """The second step: the code from the user's authenticator app."""
    pending = _pending_user()
    if pending is None:
        session.pop(PENDING_KEY, None)
        flash(_("Sign in again: the code must follow the password within 5 minutes."), "error")
        return redirect(url_for("auth.login"))
    user, target = pending
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.check_code(user, form.code.data or "", request.remote_addr or "")
        except services.Throttled:
            form.form_errors.append(_("Too many wrong codes. Wait a minute and try again."))
            return render_template("auth/login_code.html", form=form), 429
        except services.InvalidCredentials:
            form.form_errors.append(_("That code is not valid. Enter the current code."))
            return render_template("auth/login_code.html", form=form), 401
        services.open_session(user, second_factor=True)  # clears the pending state too
        return redirect(target)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login_code.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out: the server forgets the session, so a copied cookie stops working."""
    if current_user.is_authenticated:
        services.sign_out(current_user._get_current_object())
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
