"""Audit actions of categories and preferences, registered next to the code that records them."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..audit.events import ACTIONS, register

_ACTIONS = {
    "category.created": ("change", _l("Notification category added")),
    "category.changed": ("change", _l("Notification category's defaults changed")),
    "organization.tool_order_changed": ("change", _l("Order of chat tools changed")),
    "member.preferences_changed": ("change", _l("Member changed their notification preferences")),
    "organization.hours_changed": ("change", _l("Working hours for notifications changed")),
    "member.hours_changed": ("change", _l("Member changed their time zone or hours")),
}

for _key, (_kind, _summary) in _ACTIONS.items():
    if _key not in ACTIONS:
        register(_key, _kind, _summary)
