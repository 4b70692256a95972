"""Names and helpers every template may use; all labels go through the translation catalogs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from babel import dates
from babel.lists import format_list
from flask import Flask, url_for
from flask_babel import get_locale, get_timezone
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

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


def provider_names() -> dict[str, str]:
    """Every channel's display name by key, translated once for a table's rows."""
    return {key: str(provider_name(key)) for key in transports.keys()}  # noqa: SIM118 (no __iter__)


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


#: An id no row has, built into a URL once and replaced by each row's id (:func:`url_for_each`).
ROW_ID = 987_654_321_987_654_321


def url_for_each(endpoint: str, key: str, **values: Any) -> Callable[[int], str]:
    """``url_for(endpoint, **{key: row_id}, **values)`` for every row of a table, built once.

    A member page of 50 rows with two actions each spent a fifth of its rendering in
    ``url_for``; the rows' URLs differ only in one integer, so the URL is built with a
    placeholder id and each row's id is put in its place. ``int()`` keeps anything but digits
    out; if the placeholder's digits occur elsewhere in the URL (in a search text), every row
    falls back to ``url_for``.
    """

    def build(row_id: int) -> str:
        arguments: dict[str, Any] = {**values, key: int(row_id)}
        return url_for(endpoint, **arguments)

    built = build(ROW_ID)
    marker = str(ROW_ID)
    if built.count(marker) != 1:
        return build
    head, tail = built.split(marker)
    return lambda row_id: f"{head}{int(row_id)}{tail}"


#: Stands for a row's value in a label translated once for a whole table (:func:`text_each`).
ROW_VALUE = "\x00row\x00"


def text_each(translated: Markup) -> Callable[[str], Markup]:
    """A translated label with one value per row, translated once per table.

    ``translated`` is ``_('Deactivate %(name)s?…', name=ROW_VALUE)``: the catalog lookup is
    the costly part (a quarter of a member page's rendering when done per row), while the
    value is the only thing that changes. ``Markup.replace`` escapes each row's value.
    """
    return lambda value: translated.replace(ROW_VALUE, value)


def datetime_formatter(format: str = "medium") -> Callable[[datetime], str]:
    """``value|datetimeformat(format)`` for every row of a table, with the locale and time zone
    looked up once: Flask-Babel looks both up on every call, which was a third of an audit
    page's rendering (50 rows)."""
    locale, zone = get_locale(), get_timezone()
    return lambda value: dates.format_datetime(value, format, tzinfo=zone, locale=locale)


def _resolved(labels: dict[str, Any]) -> Callable[[], dict[str, str]]:
    """``labels`` translated once, for a loop that would otherwise translate per row."""
    return lambda: {key: str(label) for key, label in labels.items()}


def init_app(app: Flask) -> None:
    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {
            "Permission": Permission,
            "org_args": org_args(),
            "current_locale": lambda: str(get_locale() or "ja"),
            "state_label": lambda key: STATE_LABELS.get(key, key),
            "role_label": lambda key: ROLE_LABELS.get(key, key),
            "role_labels": _resolved(ROLE_LABELS),
            "provider_name": provider_name,
            "provider_names": provider_names,
            "provider_list": provider_list,
            "url_for_each": url_for_each,
            "text_each": text_each,
            "datetime_formatter": datetime_formatter,
            "ROW_VALUE": ROW_VALUE,
            "invitation_labels": INVITATION_LABELS,
            "method_label": lambda key: LINK_METHOD_LABELS.get(key, key),
        }
