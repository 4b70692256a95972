"""Delivery outcomes in plain language for admins, support staff and members.

Provider error names (``invalid_auth``, ``user_disabled``, HTTP statuses…) are stored as
``last_error_code``; these functions turn them, and routing reasons, into sentences.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import format_datetime, get_timezone, gettext
from flask_babel import lazy_gettext as _l

from .channels import transports
from .routing import Route

_REVOKED = {
    "invalid_auth",
    "token_revoked",
    "account_inactive",
    "not_authed",
    "invalid_grant",
    "ProviderAuthError",
    "http_401",
    "secret_unreadable",
    "integration_unavailable",
}
_GONE = {
    "user_not_found",
    "users_not_found",
    "user_disabled",
    "cannot_dm_bot",
    "channel_not_found",
    "RecipientNotFound",
    "http_403",
    "http_404",
    "MessageWritesBlocked",
    "room_gone",
    "bot_not_installed",
}
_RATE = {"ratelimited", "ProviderRateLimited", "http_429"}

STATE_LABELS = {
    "pending": _l("Waiting"),
    "sending": _l("Sending"),
    "retrying": _l("Will retry"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "dead": _l("Gave up"),
    "skipped": _l("Held"),
}


def _(message: str, **values: object) -> str:
    return str(gettext(message, **values))


def provider_name(channel: str) -> str:
    """The channel's display name (its transport's: "E-mail", a chat provider's name)."""
    return transports.name(channel)


def explain_error(channel: str, code: str | None, attempts: int = 0) -> str:
    """One sentence on why a delivery attempt failed."""
    if not code:
        return ""
    name = provider_name(channel)
    if code in _REVOKED:
        return _(
            "%(provider)s no longer accepts our connection (the app was removed or its access"
            " revoked); the integration needs reconnecting.",
            provider=name,
        )
    if code in _GONE:
        return _(
            "%(provider)s says this account is deactivated, gone or does not accept messages"
            " from the app.",
            provider=name,
        )
    if code in _RATE:
        return _("%(provider)s rate limit: retried %(count)s times.", provider=name, count=attempts)
    if code == "unexpected_error":
        return _(
            "An unexpected error occurred while sending (recorded for the vendor's support);"
            " retried %(count)s times.",
            count=attempts,
        )
    if code == "lease_expired":
        return _(
            "The delivery worker stopped while sending; retried %(count)s times.", count=attempts
        )
    if code.startswith("smtp") or code == "MailError":
        return _("The mail server did not accept the message.")
    if code.startswith("http_5") or code in {"TemporaryProviderError", "timeout", "connection"}:
        return _(
            "%(provider)s did not answer properly (server error or timeout); retried"
            " %(count)s times.",
            provider=name,
            count=attempts,
        )
    return _("%(provider)s answered with an error: %(code)s", provider=name, code=code)


def local_time(due: datetime) -> dict[str, str]:
    """``when`` and ``zone`` of an instant in the reader's time zone ("12/03 9:00", "JST")."""
    return {
        "when": str(format_datetime(due, "short")),
        "zone": due.astimezone(get_timezone()).strftime("%Z"),
    }


def _held_until(due: datetime | None) -> str:
    if due is None:
        return _("Held outside the member's working hours.")
    return _("Held outside the member's working hours until %(when)s %(zone)s.", **local_time(due))


def explain_reason(reason: str | None, due: datetime | None = None) -> str:
    """Why this channel was used (routing) — shown next to e-mail deliveries; ``due`` is when
    a held delivery goes out."""
    if not reason:
        return ""
    if reason == "held_quiet_hours":
        return _held_until(due)
    if reason == "digest_pending":
        if due is None:
            return _("Waiting for the member's digest.")
        return _("Waiting for the member's digest at %(when)s %(zone)s.", **local_time(due))
    if reason.startswith("digested:"):
        return _("Sent in the member's digest.")
    if reason == "not_linked":
        return _("Not linked to a chat account → e-mail.")
    if reason == "integration_unavailable":
        return _("The chat integration is not working → e-mail.")
    if reason.startswith("fallback:"):
        channel, _sep, code = reason.removeprefix("fallback:").partition(":")
        return _(
            "%(provider)s could not deliver → e-mail instead.", provider=provider_name(channel)
        ) + (" " + explain_error(channel, code) if code else "")
    if reason == "test":
        return _("Test message.")
    if reason == "linked":
        return _("Linked chat account.")
    if reason == "member_preference":
        return _("The member chose to receive notifications by e-mail.")
    if reason == "category_email":
        return _("The company sends this category by e-mail.")
    if reason == "member_off":
        return _("Not sent: the member turned this category off.")
    if reason == "category_off":
        return _("Not sent: the company turned this category off.")
    if reason == "held_unconfirmed":
        return _(
            "Held: the content is marked sensitive and the member has not yet confirmed the"
            " automatically matched chat account."
        )
    if reason == "released_confirmed":
        return _("Released after the member confirmed the chat account.")
    if reason == "link_notice":
        return _("Notice about a change to the member's linked chat accounts.")
    return reason


def explain_outcome(
    channel: str,
    state: str,
    code: str | None,
    attempts: int,
    reason: str | None = None,
    due: datetime | None = None,
) -> str:
    """The whole story of one delivery in a sentence, e.g. "rate limit: retried 3 times, then
    sent" — what support staff read out to a member who asks "why didn't I get it?"."""
    name = provider_name(channel)
    if state == "skipped":
        return explain_reason(reason) or _("Held.")
    if state == "sent":
        if code and attempts > 1:
            return _(
                "%(problem)s Then sent on attempt %(count)s.",
                problem=explain_error(channel, code, attempts - 1),
                count=attempts,
            )
        return _("Delivered by %(provider)s.", provider=name)
    if state == "pending" and reason == "held_quiet_hours":
        return _held_until(due)
    if state in ("pending", "sending"):
        return _("Waiting to be sent by %(provider)s.", provider=name)
    if state == "retrying":
        return explain_error(channel, code, attempts) + " " + _("Will try again.")
    if state == "dead":
        return (
            explain_error(channel, code, attempts)
            + " "
            + _("Gave up after %(count)s attempts.", count=attempts)
        )
    return explain_error(channel, code, attempts) or _("Failed.")


def explain_route(route: Route) -> str:
    """Where a notification on ``route`` goes, for the member's preview ("Slack DM and
    e-mail", "e-mail: no chat account linked", "not sent")."""
    if route.off:
        return explain_reason(route.reason)
    if route.channel != transports.default.key:
        name = provider_name(route.channel)
        if route.also_email:
            return _("A %(provider)s direct message and an e-mail.", provider=name)
        return _("A %(provider)s direct message.", provider=name)
    if route.reason in ("not_linked", "integration_unavailable"):
        return explain_reason(route.reason)
    return _("E-mail")
