"""Every audit action, registered in one place.

Adding an action is one ``register`` line: a dotted past-tense key, a kind (positive, change,
negative, other) and a summary shown in the log. Keys are checked for duplicates at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString


@dataclass(frozen=True)
class AuditAction:
    key: str
    kind: str
    summary: LazyString


ACTIONS: dict[str, AuditAction] = {}
KINDS = ("positive", "change", "negative", "other")


def register(key: str, kind: str, summary: LazyString) -> AuditAction:
    """Add an action to the registry; a duplicate key or unknown kind is a programming error."""
    if key in ACTIONS:
        raise ValueError(f"audit action {key!r} registered twice")
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    ACTIONS[key] = action = AuditAction(key, kind, summary)
    return action


register("user.logged_in", "other", _l("Signed in"))
register("user.logged_out", "other", _l("Signed out"))
register("user.login_failed", "negative", _l("Sign-in failed"))
register("user.login_throttled", "negative", _l("Sign-in throttled"))
register("user.mfa_failed", "negative", _l("Wrong two-step verification code"))
register("user.mfa_enabled", "positive", _l("Two-step verification turned on"))
register("user.mfa_disabled", "negative", _l("Two-step verification turned off"))
register("user.created", "positive", _l("User created"))
register("user.deactivated", "negative", _l("User deactivated"))
register("user.locale_changed", "change", _l("Language changed"))
register("support.viewed", "other", _l("Support viewed an organization page"))
register("organization.created", "positive", _l("Organization created"))
register("secrets.rotated", "change", _l("Encryption keys rotated"))
register("secret.unreadable", "negative", _l("A stored secret could not be decrypted"))
register("integration.connected", "positive", _l("Integration connected"))
register("integration.disconnected", "negative", _l("Integration disconnected"))
register("integration.needs_reconnect", "negative", _l("Integration needs reconnection"))
register("integration.updated", "change", _l("Integration settings changed"))
register("link.created", "positive", _l("Chat account linked"))
register("link.removed", "negative", _l("Chat account unlinked"))
register("link.flagged", "negative", _l("Chat account link flagged"))
register("link.invited", "change", _l("Members invited to link their own account"))
register("link.invitation_used", "other", _l("Invitation opened to link an account"))
register(
    "link.self_link_refused",
    "negative",
    _l("A member signed in with a chat account linked to someone else"),
)
register("api_key.created", "positive", _l("API key created"))
register("api_key.revoked", "negative", _l("API key revoked"))
register("delivery.replayed", "change", _l("Delivery replayed"))
register("delivery.stuck", "negative", _l("Delivery abandoned by the worker repeatedly"))
register("notification.test_sent", "other", _l("Test message sent"))
register("link.auto_linked", "positive", _l("Members linked automatically by e-mail"))
register("link.auto_link_undone", "negative", _l("Automatic e-mail linking undone"))
register("webhook.endpoint_created", "positive", _l("Webhook endpoint added"))
register("webhook.endpoint_changed", "change", _l("Webhook endpoint changed"))
register("webhook.endpoint_deleted", "negative", _l("Webhook endpoint deleted"))
register("webhook.endpoint_enabled", "positive", _l("Webhook endpoint turned on"))
register("webhook.endpoint_disabled", "negative", _l("Webhook endpoint turned off"))
register("webhook.disabled_gone", "negative", _l("Webhook endpoint turned off: it answered 410"))
register("webhook.secret_rotated", "change", _l("Webhook signing secret rotated"))
register("webhook.test_sent", "other", _l("Webhook test event sent"))
register("webhook.replayed", "change", _l("Webhook delivery replayed"))
