"""Language selection: the user's setting, else the browser's Accept-Language, else Japanese."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, has_request_context, request, session
from flask_login import current_user

from .extensions import babel


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # the worker: callers use force_locale for the recipient
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    if session.get("locale") in languages:
        return str(session["locale"])
    best = request.accept_languages.best_match(languages)
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


def compile_catalogs(root: Path) -> None:
    """Compile each ``messages.po`` whose ``.mo`` is missing or stale.

    Compiled catalogs are build output (not committed); compiling here means every entry point —
    ``make run``, gunicorn, a bare ``flask`` command, the tests — starts with current catalogs.
    """
    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with open(po, "rb") as handle:
            catalog = read_po(handle)
        tmp = mo.with_suffix(".mo.tmp")
        with open(tmp, "wb") as handle:
            write_mo(handle, catalog)
        tmp.replace(mo)  # atomic: concurrent processes never read half a file


def init_app(app: Flask) -> None:
    compile_catalogs(Path(app.root_path) / "translations")
    babel.init_app(app, locale_selector=select_locale)
