"""Names and helpers every template may use; all labels go through the translation catalogs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from .accounts.permissions import Permission
from .accounts.tenancy import org_args
from .integrations.registry import providers

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
#: E-mail is a channel, not a chat provider: its label is the one name not in the registry.
EMAIL_LABEL = _l("E-mail")


def provider_name(key: str) -> str | LazyString:
    """The display name of a provider (``ChatProvider.name``) or channel; the key if unknown."""
    if key == "email":
        return EMAIL_LABEL
    provider = providers.get(key)
    return provider.name if provider is not None else key


class _ProviderNames(Mapping[str, "str | LazyString"]):
    """:func:`provider_name` as a read-only mapping, for modules that still look names up with
    ``PROVIDER_NAMES.get``; it holds no names of its own."""

    def __getitem__(self, key: str) -> str | LazyString:
        if key != "email" and providers.get(key) is None:
            raise KeyError(key)
        return provider_name(key)

    def __iter__(self) -> Iterator[str]:
        return iter([*providers.keys(), "email"])

    def __len__(self) -> int:
        return len(providers.keys()) + 1


PROVIDER_NAMES: Mapping[str, str | LazyString] = _ProviderNames()


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
            "method_label": lambda key: LINK_METHOD_LABELS.get(key, key),
        }
