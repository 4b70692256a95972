"""Names and helpers every template may use; all labels go through the translation catalogs."""

from __future__ import annotations

from typing import Any

from babel.lists import format_list
from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from .accounts.permissions import Permission
from .accounts.tenancy import org_args
from .integrations.registry import providers
from .notifications.channels import transports

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
    "self": _l("Linked by the member"),
}


#: An invitation's state as the provider page and the coverage say it.
INVITATION_LABELS = {
    "queued": _l("Waiting"),
    "sent": _l("Sent"),
    "bounced": _l("bounced"),
    "linked": _l("linked by the member"),
    "expired": _l("expired"),
}


def provider_name(key: str) -> str:
    """The display name of a channel: e-mail, or a chat provider (``ChatProvider.name``); the
    key itself when nothing is registered under it."""
    return transports.name(key)


def provider_list(style: str = "standard", *, links_by_email: bool = False) -> str:
    """The registered chat tools' names as one phrase in the current language ("Slack,
    Chatwork, or Microsoft Teams" for ``style="or"``), so help texts never name a fixed set;
    ``links_by_email`` keeps the tools whose directory can link members by e-mail."""
    names = [
        str(provider.name)
        for provider in providers.all()
        if provider.links_by_email or not links_by_email
    ]
    return format_list(names, style=style, locale=get_locale() or "ja")  # type: ignore[arg-type]


def init_app(app: Flask) -> None:
    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {
            "Permission": Permission,
            "org_args": org_args(),
            "current_locale": lambda: str(get_locale() or "ja"),
            "state_label": lambda key: STATE_LABELS.get(key, key),
            "role_label": lambda key: ROLE_LABELS.get(key, key),
            "provider_name": provider_name,
            "provider_list": provider_list,
            "invitation_labels": INVITATION_LABELS,
            "method_label": lambda key: LINK_METHOD_LABELS.get(key, key),
        }
