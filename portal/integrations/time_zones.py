"""A member's time zone as the chat provider reports it, kept only as a valid IANA name.

Slack's users.list gives an IANA name (``tz``: "Asia/Tokyo"); Microsoft Graph's mailbox
settings usually a Windows name ("Tokyo Standard Time"), sometimes an IANA one. Whatever comes
back is stored in ``ChatAccount.extra["tz"]`` only when :mod:`zoneinfo` can load it under that
exact spelling, so whoever reads it later (holding notifications outside working hours) can
call ``ZoneInfo(extra["tz"])`` without a guard. A provider's value is untrusted input: a signed
Slack event can carry anything.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from tzlocal.windows_tz import win_tz

#: The longest IANA name is 32 characters; anything far longer is not worth a lookup.
MAX_LENGTH = 64
#: Files in the zone directory that load but are nobody's zone: the host's own setting
#: (``localtime``) and tzdata's placeholder for "unknown" (``Factory``, abbreviated "-00").
NOT_A_PLACE = frozenset({"localtime", "Factory"})


@cache
def _known() -> frozenset[str]:
    """Every zone name this host's tz database has, spelled as it spells them.

    Membership, not only ``ZoneInfo(value)``, decides: on a case-insensitive file system
    ``ZoneInfo("asia/tokyo")`` loads, yet that spelling fails on the next host.
    """
    return frozenset(available_timezones()) - NOT_A_PLACE


def iana_or_none(value: object) -> str | None:
    """``value`` when it is an IANA zone name this host can load, else None; never raises.

    Non-strings, overlong strings, control characters, paths ("../etc") and unknown names are
    all just "no time zone".
    """
    if not isinstance(value, str) or len(value) > MAX_LENGTH or value not in _known():
        return None
    try:
        ZoneInfo(value)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return value


def iana_from_windows(value: object) -> str | None:
    """A Windows time zone name ("Tokyo Standard Time") as its IANA zone, or an IANA name as
    is; None for anything else ("Customized Time Zone", junk).

    The mapping is tzlocal's ``win_tz``, generated from CLDR's windowsZones.xml (the zone of
    the "001" territory, the one CLDR names for the Windows zone as a whole).
    """
    if isinstance(value, str) and value in win_tz:
        return iana_or_none(win_tz[value])
    return iana_or_none(value)
