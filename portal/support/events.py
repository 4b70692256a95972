"""Audit actions of the people work (support console, member page, link notices, CSV).

Registered here, next to the code that records them, so the shared registry stays untouched;
every module that records one of these imports this module first.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..audit.events import ACTIONS, register

_PEOPLE_ACTIONS = {
    "support.searched": ("other", _l("Support searched members")),
    "link.confirmed": ("positive", _l("Member confirmed a chat account")),
    "link.disowned": ("negative", _l("Member said a chat account is not theirs")),
    "links.imported": ("change", _l("Links imported from CSV")),
    "links.exported": ("other", _l("Links exported to CSV")),
    "member.channel_changed": ("change", _l("Member changed their notification channel")),
    "organization.policy_changed": ("change", _l("Notification policy changed")),
}

for _key, (_kind, _summary) in _PEOPLE_ACTIONS.items():
    if _key not in ACTIONS:
        register(_key, _kind, _summary)
