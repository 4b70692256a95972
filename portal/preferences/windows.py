"""When a member may be notified: the company's working hours (days, start, end, Japanese
public holidays off) in the member's own time zone, narrowed by the member (issue 16 item 4).

Pure functions of a :class:`Window` and an instant, so the tests move the clock across
midnight, weekends, holidays and DST changes without touching the database. Local times are
turned into instants with ``zoneinfo``: a start that falls in a DST gap (02:30 on the night
clocks spring forward) is read with the offset before the change, as ``zoneinfo`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

#: "HH:MM", 00:00–23:59 (24:00 and 25:00 are refused).
CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
DEFAULT_ZONE = "Asia/Tokyo"
#: How far ahead to look for the next open day (a long holiday week plus a weekend).
LOOKAHEAD_DAYS = 21


def parse_clock(value: object) -> time | None:
    """ "09:00" → time(9, 0); anything else (25:00, "9時", None) → None."""
    if not isinstance(value, str) or not (match := CLOCK.fullmatch(value.strip())):
        return None
    return time(int(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=16)
def _japanese_holidays(year: int) -> holidays.HolidayBase:
    calendar: holidays.HolidayBase = holidays.country_holidays("JP", years=year)
    return calendar


def is_holiday(day: date) -> bool:
    """A Japanese public holiday (the ``holidays`` package: substitute and citizens' holidays
    included)."""
    return day in _japanese_holidays(day.year)


@dataclass(frozen=True)
class Window:
    """Open on ``days`` (ISO weekdays, 1 = Monday) from ``start`` to ``end``, local time in
    ``zone``; ``holidays_off`` closes Japanese public holidays."""

    zone: ZoneInfo
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start: time = time(9, 0)
    end: time = time(19, 0)
    holidays_off: bool = True

    def _open_on(self, day: date) -> bool:
        return day.isoweekday() in self.days and not (self.holidays_off and is_holiday(day))

    def next_open(self, now: datetime) -> datetime | None:
        """``None`` when ``now`` is inside the window, else the instant (UTC) it next opens."""
        if not self.days or self.start >= self.end:
            return None  # a window that never opens would hold forever: treat as always open
        local = now.astimezone(self.zone)
        for offset in range(LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if not self._open_on(day):
                continue
            opens = datetime.combine(day, self.start, tzinfo=self.zone)
            closes = datetime.combine(day, self.end, tzinfo=self.zone)
            if offset == 0 and opens <= local < closes:
                return None
            if local < opens:
                return opens.astimezone(UTC)
        return None

    def narrowed(self, start: time | None, end: time | None) -> Window:
        """The member's own hours, kept inside the company's."""
        new_start = max(self.start, start) if start else self.start
        new_end = min(self.end, end) if end else self.end
        if new_start >= new_end:
            return self
        return Window(self.zone, self.days, new_start, new_end, self.holidays_off)


#: Digest modes: each notification at once, or one digest a day or a week.
DIGEST_MODES = ("", "daily", "weekly")


@dataclass(frozen=True)
class DigestSchedule:
    """A digest "daily at ``at``" or "weekly on ``weekday`` at ``at``", local time in ``zone``."""

    zone: ZoneInfo
    mode: str
    at: time = time(9, 0)
    weekday: int = 1

    def next_at(self, now: datetime) -> datetime:
        """The first digest time after ``now`` (UTC) — a notification created now joins it."""
        local = now.astimezone(self.zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if self.mode == "weekly" and day.isoweekday() != self.weekday:
                continue
            due = datetime.combine(day, self.at, tzinfo=self.zone)
            if due > local:
                return due.astimezone(UTC)
        raise AssertionError("a daily or weekly time is always within 8 days")
