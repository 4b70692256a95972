"""Where the seeded people live: most in Japan, a few abroad, each in the same place in every
tool (Slack's ``tz``, Graph's mailbox ``timeZone``), chosen by their number so every reset and
every generated directory is the same.

Demo members 03 and 23 are in Singapore, 07 in Los Angeles, 10 and 30 in New York, 17 and 37
in London; everybody else, admins and bots included, in Tokyo.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOME = "Asia/Tokyo"
#: By the person's number modulo 20.
ABROAD = {3: "Asia/Singapore", 10: "America/New_York", 17: "Europe/London"}
#: The one person on the US west coast.
PACIFIC_PERSON, PACIFIC = 7, "America/Los_Angeles"

#: Slack's ``tz_label`` (standard time, summer time) of the zones people live in.
SLACK_LABELS = {
    "Asia/Tokyo": ("Japan Standard Time", "Japan Standard Time"),
    "Asia/Singapore": ("Singapore Standard Time", "Singapore Standard Time"),
    "America/New_York": ("Eastern Standard Time", "Eastern Daylight Time"),
    "America/Los_Angeles": ("Pacific Standard Time", "Pacific Daylight Time"),
    "Europe/London": ("Greenwich Mean Time", "British Summer Time"),
}
#: Windows' name of each, as Exchange keeps it in the mailbox settings (CLDR windowsZones).
WINDOWS_NAMES = {
    "Asia/Tokyo": "Tokyo Standard Time",
    "Asia/Singapore": "Singapore Standard Time",
    "America/New_York": "Eastern Standard Time",
    "America/Los_Angeles": "Pacific Standard Time",
    "Europe/London": "GMT Standard Time",
}


def home_zone(number: int) -> str:
    """The IANA zone person ``number`` lives in."""
    if number == PACIFIC_PERSON:
        return PACIFIC
    return ABROAD.get(number % 20, HOME)


def windows_name(zone: str) -> str:
    """Exchange's (Windows) name of a zone people live in."""
    return WINDOWS_NAMES[zone]


def check_zone(zone: str) -> str:
    """``zone`` if the sandbox can give Slack's fields for it; ValueError otherwise (Slack
    only ever holds zones it knows)."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as problem:
        raise ValueError(f"unknown time zone {zone!r}") from problem
    return zone


def slack_fields(zone: str, now: datetime | None = None) -> dict[str, Any]:
    """users.list's ``tz``, ``tz_label`` and ``tz_offset`` (seconds east of UTC) for ``zone``
    at ``now``, so summer time shows as it does in Slack."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    offset = local.utcoffset()
    name = local.tzname() or zone  # a zone nobody seeded ("CET"): its abbreviation
    standard, summer = SLACK_LABELS.get(zone, (name, name))
    return {
        "tz": zone,
        "tz_label": summer if local.dst() else standard,
        "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
    }
