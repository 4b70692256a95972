"""Names and helpers every template may use; all labels go through the translation catalogs."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from .accounts.permissions import Permission
from .accounts.tenancy import org_args

STATE_LABELS = {
    "not_connected": _l("Not connected"),
    "configuring": _l("Setting up"),
    "connected": _l("Connected"),
    "needs_reconnect": _l("Error"),
    "disconnected": _l("Not connected"),
}
ROLE_LABELS = {"admin": _l("Administrator"), "member": _l("Member"), "support": _l("Support")}
LINK_METHOD_LABELS = {
    "email": _l("Linked by e-mail"),
    "manual": _l("Linked by hand"),
    "suggestion": _l("Suggested"),
    "bot_install": _l("Linked by the bot"),
    "csv": _l("Imported"),
}
PROVIDER_NAMES = {
    "slack": "Slack",
    "chatwork": "Chatwork",
    "teams": "Microsoft Teams",
    "email": _l("E-mail"),
}


def init_app(app: Flask) -> None:
    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {
            "Permission": Permission,
            "org_args": org_args(),
            "current_locale": lambda: str(get_locale() or "ja"),
            "state_label": lambda key: STATE_LABELS.get(key, key),
            "role_label": lambda key: ROLE_LABELS.get(key, key),
            "provider_name": lambda key: PROVIDER_NAMES.get(key, key),
            "method_label": lambda key: LINK_METHOD_LABELS.get(key, key),
        }
