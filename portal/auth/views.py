"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from . import bp, services
from .forms import LoginForm


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
            services.sign_in(
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
        return redirect(_safe_next(request.args.get("next")))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out: the server forgets the session, so a copied cookie stops working."""
    if current_user.is_authenticated:
        services.sign_out(current_user._get_current_object())
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
