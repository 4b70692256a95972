"""Delivery health (issue 17 item 6): one organization's deliveries of the last 7 days, hour by
hour and outcome by outcome, one series per chat tool; drawn on 外部ツールの連携 and on the
support console's health page by ``notifications/_delivery_health.html``.

**Outcomes.** Each delivery row counts once, under the first outcome it matches, in the hour
of the timestamp named with it:

1. *fallback* — an e-mail made because a chat delivery ended unsent (reason
   ``fallback:<tool>:<code>``, written by the dispatcher), whatever became of the e-mail
   itself. It counts under ``<tool>``, not under e-mail, at ``created_at``: the dispatcher
   makes it the moment the chat delivery gave up.
2. *failed* — ``failed`` or ``dead``, at ``updated_at``: when it ended (nothing writes an
   ended row again unless an admin replays it, and then it is no longer ended).
3. *retried* — ``sent`` after more than one attempt, at ``sent_at``; or still trying:
   ``retrying`` (a temporary error, or paced / rate limited), or ``pending``/``sending``
   with more than one attempt made, at ``updated_at`` (its latest attempt or rescheduling).
4. *sent* — ``sent`` at the first attempt, at ``sent_at``.
5. *held* — waiting on purpose: ``pending`` outside working hours
   (``hours.HELD_QUIET_HOURS``), ``skipped`` until the digest (``hours.DIGEST_PENDING``) or
   until the member confirms an automatic link (``services.HELD_REASON``); at
   ``created_at``, when it was held.

Not counted: a first attempt still under way (queued or sending, normally seconds; not an
outcome yet), a delivery turned off by the member or the company (``skipped``: there was
nothing to deliver), and one listed in a digest (``digested:<id>``: the digest is a delivery
of its own and counts).

The chart shows where each delivery is *now*: a notification held at 22:00 and sent at 09:00
is one "sent" bar at 09:00; the held bar it made at 22:00 is gone.

**Hours.** :data:`HOURS` hours ending with the current one (so the last bar is still
filling), starting at a whole hour of the organization's time zone — the zone its working
hours use (``hours.company_zone``) — so bars and day rows follow the company's clock, even
with a half-hour offset. Each bucket is 3,600 real seconds from the window's start; the hour
is computed in SQL as whole seconds since 1970 (``strftime('%s')`` on SQLite, ``EXTRACT
(EPOCH …)`` on PostgreSQL), so no time zone arithmetic happens in the database.

**Cost.** One grouped query, filtered by ``organization_id`` and ``updated_at >= start``:
every write to a delivery sets ``updated_at`` and none of the timestamps above is later than
it, so the bound drops nothing. The result is at most tools × outcomes × hours rows (a few
thousand), whatever the volume. On SQLite (10,000 members, one busy 2-core machine) it took
≈0.3 s with 200,000 deliveries inside the week and ≈0.15 s with 50,000 inside and 250,000
older: the GROUP BY's sort of the week's rows dominates, so an index on
``(organization_id, updated_at)`` changed nothing measurable and none was added.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, ColumnElement, Integer, case, cast, extract, func, select
from sqlalchemy.sql.expression import type_coerce

from ..accounts.models import Organization
from ..database import UTCDateTime, utcnow
from ..extensions import db
from ..preferences import hours as working_hours
from . import health_chart
from .models import FALLBACK_REASON_PREFIX, Delivery, DeliveryState
from .services import HELD_REASON
from .transports import transports

HOURS = 7 * 24
HOUR = timedelta(hours=1)

#: Bottom-up in each bar, left to right in the legend and the tables.
OUTCOMES = ("sent", "retried", "failed", "fallback", "held")
OUTCOME_LABELS = {
    "sent": _l("Sent"),
    "retried": _l("Retried"),
    "failed": _l("Failed"),
    "fallback": _l("E-mail fallback"),
    "held": _l("Held"),
}
OUTCOME_HELP = {
    "sent": _l("Delivered at the first attempt."),
    "retried": _l(
        "Delivered after more than one attempt, or still being retried (a temporary error"
        " or the chat tool's rate limit)."
    ),
    "failed": _l("Could not be delivered: a permanent error, or every attempt used up."),
    "fallback": _l("Sent by e-mail instead, because the chat message could not be delivered."),
    "held": _l(
        "Waiting on purpose: outside working hours, for a digest, or until the member"
        " confirms their chat account."
    ),
}
#: Hours with this outcome get a mark under the bar: a single failure is easy to miss.
MARKED = "failed"

Counts = Mapping[str, int]


@dataclass(frozen=True)
class Row:
    """One line of a table: a day or an hour, with its counts per outcome."""

    label: str
    counts: Counts

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ToolHealth:
    tool: str
    name: str
    chart: health_chart.Chart
    days: tuple[Row, ...]
    #: Hours with at least one delivery, oldest first; the others had none.
    hours: tuple[Row, ...]
    totals: Row
    #: The label of each column of ``chart`` (its hour), for the bars' tooltips.
    hour_labels: tuple[str, ...]


@dataclass(frozen=True)
class DeliveryHealth:
    zone: str
    #: "UTC+09:00": the zone's offset now, beside its name.
    offset: str
    start: datetime
    end: datetime
    tools: tuple[ToolHealth, ...]

    @property
    def labels(self) -> dict[str, str]:
        """Outcome → its name in the current language, in :data:`OUTCOMES` order."""
        return {key: str(OUTCOME_LABELS[key]) for key in OUTCOMES}

    @property
    def legend(self) -> list[tuple[str, str, str]]:
        """(outcome, name, what it means) in :data:`OUTCOMES` order."""
        return [(key, str(OUTCOME_LABELS[key]), str(OUTCOME_HELP[key])) for key in OUTCOMES]


def window(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of the :data:`HOURS` hours ending with the local hour of ``now``."""
    local = now.astimezone(zone)
    # Floor in the company's zone: with a +05:30 offset, a local hour starts at :30 UTC.
    end = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC) + HOUR
    return end - HOURS * HOUR, end


def hourly_counts(organization_id: int, start: datetime) -> dict[str, list[Counts]]:
    """Tool → :data:`HOURS` counters (outcome → deliveries) of the hours from ``start``: one
    grouped query, scoped to the organization."""
    reason = Delivery.reason
    state = Delivery.state
    # The prefix has no LIKE wildcard in it; a plain pattern leaves no "||" for PostgreSQL to
    # resolve between two untyped parameters.
    fallback = (Delivery.channel == transports.default.key) & reason.like(
        f"{FALLBACK_REASON_PREFIX}%"
    )
    ended = state.in_((DeliveryState.FAILED, DeliveryState.DEAD))
    sent = state == DeliveryState.SENT
    tried_again = Delivery.attempts > 1
    still_trying = (state == DeliveryState.RETRYING) | (
        state.in_((DeliveryState.PENDING, DeliveryState.SENDING)) & tried_again
    )
    held = ((state == DeliveryState.PENDING) & (reason == working_hours.HELD_QUIET_HOURS)) | (
        (state == DeliveryState.SKIPPED) & reason.in_((working_hours.DIGEST_PENDING, HELD_REASON))
    )
    outcome = case(
        (fallback, "fallback"),
        (ended, "failed"),
        (sent & tried_again, "retried"),
        (sent, "sent"),
        (still_trying, "retried"),
        (held, "held"),
        else_=None,
    )
    at = type_coerce(
        case(
            (fallback, Delivery.created_at),
            (sent, func.coalesce(Delivery.sent_at, Delivery.updated_at)),
            (held, Delivery.created_at),
            else_=Delivery.updated_at,
        ),
        UTCDateTime,
    )
    # The fallback's reason names its tool; parsed in Python, the same way on both databases.
    tool = case((fallback, reason), else_=Delivery.channel)
    rows = (
        select(
            tool.label("tool"),
            outcome.label("outcome"),
            _hour_index(at, start).label("hour"),
        )
        # Only the lower bounds here: :func:`bucket` drops hours from HOURS on and rows of no
        # outcome, cheaper than SQLite evaluating each CASE once more per row to filter them.
        .where(
            Delivery.organization_id == organization_id,
            Delivery.updated_at >= start,
            at >= start,
        )
        .subquery()
    )
    # Grouped outside: the CASE expressions carry bound values, and PostgreSQL would not see
    # a GROUP BY copy of them (with its own parameters) as the selected expression.
    grouped = db.session.execute(
        select(rows.c.tool, rows.c.outcome, rows.c.hour, func.count()).group_by(
            rows.c.tool, rows.c.outcome, rows.c.hour
        )
    ).tuples()
    return bucket(grouped)


def _hour_index(at: ColumnElement[datetime], start: datetime) -> ColumnElement[int]:
    """Whole hours from ``start`` to ``at`` (never negative here: rows before are filtered)."""
    origin = int(start.timestamp())
    if db.engine.dialect.name == "sqlite":
        # The stored text "YYYY-MM-DD HH:MM:SS.ffffff" is UTC. Its microseconds are cut off
        # first: SQLite rounds them to milliseconds, and 13:59:59.9996 would become 14:00:00.
        seconds: ColumnElement[int] = cast(func.strftime("%s", func.substr(at, 1, 19)), Integer)
    else:
        seconds = cast(func.floor(extract("epoch", at)), BigInteger)
    return (seconds - origin) // 3600


def bucket(rows: Iterable[tuple[str | None, str, int, int]]) -> dict[str, list[Counts]]:
    """Grouped (tool or fallback reason, outcome, hour, count) rows → tool → hourly counters.
    Rows outside the window or of an unknown outcome are dropped."""
    series: dict[str, list[Counter[str]]] = {}
    for tool, outcome, hour, count in rows:
        if outcome not in OUTCOMES or not 0 <= hour < HOURS or not tool:
            continue
        if outcome == "fallback":
            tool = tool.removeprefix(FALLBACK_REASON_PREFIX).partition(":")[0]
        if tool not in series:
            series[tool] = [Counter() for _ in range(HOURS)]
        series[tool][hour][outcome] += count
    return {tool: list(hours) for tool, hours in series.items()}


def tool_order(tools: Iterable[str]) -> list[str]:
    """Chat tools in the registry's order, then e-mail, then channels no longer registered."""
    default = transports.default.key
    channels = transports.keys()  # a registry, not a dict: it has no __iter__
    known = [key for key in channels if key != default] + [default]
    present = set(tools)
    return [key for key in known if key in present] + sorted(present - set(known))


def for_organization(organization: Organization, now: datetime | None = None) -> DeliveryHealth:
    """The last :data:`HOURS` hours of the organization's deliveries, ready to draw and tabulate,
    labelled in the current language and the company's time zone."""
    zone_name = working_hours.company_zone(organization)
    zone = ZoneInfo(zone_name)
    now = now or utcnow()
    start, end = window(now, zone)
    series = hourly_counts(organization.id, start)
    starts = [(start + i * HOUR).astimezone(zone) for i in range(HOURS)]
    tools = tuple(_tool(key, series[key], starts) for key in tool_order(series))
    return DeliveryHealth(zone_name, _offset(now.astimezone(zone)), start, end, tools)


def _tool(key: str, hours: Sequence[Counts], starts: Sequence[datetime]) -> ToolHealth:
    locale = get_locale() or "ja"
    day_labels: dict[date, str] = {}
    days: dict[date, Counter[str]] = {}
    hour_labels = []
    ticks = []
    for index, (counts, local) in enumerate(zip(hours, starts, strict=True)):
        day = local.date()
        if day not in day_labels:
            day_labels[day] = format_skeleton("MMMEd", local, tzinfo=local.tzinfo, locale=locale)
        if local.hour == 0:
            ticks.append((index, format_skeleton("MEd", local, tzinfo=local.tzinfo, locale=locale)))
        following = local + HOUR
        hour_labels.append(f"{day_labels[day]} {local:%H:%M}–{following:%H:%M}")
        days.setdefault(day, Counter()).update(counts)
    totals: Counter[str] = Counter()
    for counts in hours:
        totals.update(counts)
    return ToolHealth(
        tool=key,
        name=transports.name(key),
        chart=health_chart.stacked_bars(hours, OUTCOMES, ticks=ticks, mark=MARKED),
        days=tuple(Row(day_labels[day], counts) for day, counts in days.items()),
        hours=tuple(
            Row(label, counts) for label, counts in zip(hour_labels, hours, strict=True) if counts
        ),
        totals=Row("", totals),
        hour_labels=tuple(hour_labels),
    )


def _offset(local: datetime) -> str:
    minutes = int((local.utcoffset() or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
