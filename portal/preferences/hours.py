"""Working hours: the company's (days, hours, holidays, default zone), the member's zone and
narrower hours, and when a non-urgent notification is held until (issue 16 item 4). Each
change owns its transaction and is audited; bad input raises HoursError and saves nothing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..integrations.time_zones import iana_or_none
from . import events as _events  # noqa: F401  (registers the audit actions)
from .models import MemberPreference, NotificationCategory
from .windows import DEFAULT_ZONE, DIGEST_MODES, DigestSchedule, Window, parse_clock

#: Reason of a delivery held outside the member's working hours (state pending, due then).
HELD_QUIET_HOURS = "held_quiet_hours"
#: Reason of a delivery waiting for its digest (state skipped, ``next_attempt_at`` = the
#: digest time; ``digests.py`` builds the digest then).
DIGEST_PENDING = "digest_pending"


class HoursError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def company_zone(organization: Organization) -> str:
    """The company's default zone: its setting when this host can load it, else Tokyo."""
    return iana_or_none(organization.time_zone) or DEFAULT_ZONE


def company_window(organization: Organization, zone: ZoneInfo | None = None) -> Window:
    """The company's window, in ``zone`` (a member's) or the company's default zone."""
    return Window(
        zone or ZoneInfo(company_zone(organization)),
        frozenset(int(d) for d in organization.work_days if d in "1234567"),
        parse_clock(organization.work_start) or Window.start,
        parse_clock(organization.work_end) or Window.end,
        organization.holidays_off,
    )


def member_zone(user: User, organization: Organization) -> tuple[str, str]:
    """The member's zone name and where it comes from: "member" (set by them), "chat" (their
    chat tool's profile), or "company" (the company's default)."""
    if own := iana_or_none(user.time_zone):
        return own, "member"
    for extra in db.session.scalars(
        select(ChatAccount.extra)
        .join(AccountLink, AccountLink.chat_account_id == ChatAccount.id)
        .join(Integration, Integration.id == AccountLink.integration_id)
        .where(AccountLink.user_id == user.id, AccountLink.organization_id == user.organization_id)
        .order_by(Integration.provider)
    ):
        if zone := iana_or_none((extra or {}).get("tz")):
            return zone, "chat"
    return company_zone(organization), "company"


def member_window(user: User, organization: Organization) -> Window:
    zone, _source = member_zone(user, organization)
    return company_window(organization, ZoneInfo(zone)).narrowed(
        parse_clock(user.work_start), parse_clock(user.work_end)
    )


def hold_until(
    user: User, organization: Organization, now: datetime, *, urgent: bool
) -> datetime | None:
    """When a notification for ``user`` created ``now`` may go out, or None for at once."""
    if urgent or not organization.quiet_hours_on:
        return None
    return member_window(user, organization).next_open(now)


def schedule_for(
    user: User, organization: Organization, category: NotificationCategory
) -> DigestSchedule | None:
    """The member's digest schedule for ``category`` (theirs where the company lets members
    choose, else the company's), or None for "each at once"."""
    preference = None
    if organization.allow_channel_choice:
        preference = db.session.scalar(
            select(MemberPreference).where(
                MemberPreference.user_id == user.id, MemberPreference.category_id == category.id
            )
        )
    own = preference is not None and preference.digest is not None
    mode = preference.digest if own and preference else category.digest
    if not mode:
        return None
    clock = (preference.digest_time if own and preference else None) or category.digest_time
    weekday = (preference.digest_weekday if own and preference else None) or category.digest_weekday
    zone, _source = member_zone(user, organization)
    return DigestSchedule(
        ZoneInfo(zone), str(mode), parse_clock(clock) or DigestSchedule.at, weekday
    )


def digest_setting(mode: object, clock: object, weekday: object) -> tuple[str, str, int]:
    """A digest setting from a form: mode ("", "daily", "weekly"), "HH:MM" and an ISO
    weekday; anything else → HoursError."""
    if mode not in DIGEST_MODES:
        raise HoursError("digest", str(_l("Choose one of the options.")))
    day = int(weekday) if isinstance(weekday, str) and weekday.isdigit() else weekday
    if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 7:
        raise HoursError("digest_weekday", str(_l("Choose a day of the week.")))
    return str(mode), _clock(clock, "digest_time"), day


def _clock(value: object, field: str) -> str:
    parsed = parse_clock(value)
    if parsed is None:
        raise HoursError(field, str(_l("Enter a time from 00:00 to 23:59, like 09:00.")))
    return parsed.strftime("%H:%M")


def _zone(value: object, field: str) -> str:
    zone = iana_or_none(value.strip() if isinstance(value, str) else value)
    if zone is None:
        raise HoursError(
            field, str(_l("This time zone does not exist. Use a name like Asia/Tokyo."))
        )
    return zone


def set_company_hours(
    organization: Organization,
    *,
    actor: User,
    on: bool,
    zone: object,
    days: list[str],
    start: object,
    end: object,
    holidays_off: bool,
) -> bool:
    """Save the company's working hours; commits, audited. Returns whether anything changed."""
    opens, closes = _clock(start, "work_start"), _clock(end, "work_end")
    work_days = "".join(sorted({d for d in days if len(d) == 1 and d in "1234567"}))
    if not work_days:
        raise HoursError("work_days", str(_l("Choose at least one working day.")))
    if opens >= closes:
        raise HoursError("work_end", str(_l("The end must be later than the start.")))
    values: dict[str, object] = {
        "quiet_hours_on": on,
        "time_zone": _zone(zone, "time_zone"),
        "work_days": work_days,
        "work_start": opens,
        "work_end": closes,
        "holidays_off": holidays_off,
    }
    return _apply(
        organization,
        values,
        "organization.hours_changed",
        organization=organization,
        actor=actor,
        target=("organization", organization.id, organization.name),
    )


def _apply(
    row: Organization | User,
    values: dict[str, object],
    action: str,
    *,
    organization: Organization | None,
    actor: User,
    target: tuple[str, int, str],
) -> bool:
    """Set ``values`` on ``row`` if any differs; audit what changed; commit."""
    before = {name: getattr(row, name) for name in values}
    if before == values:
        return False
    for name, value in values.items():
        setattr(row, name, value)
    old, new = audit.changed(before, values)
    audit.record(
        action, organization=organization, actor=actor, target=target, before=old, after=new
    )
    db.session.commit()
    return True


def set_member_hours(user: User, *, zone: object, start: object, end: object) -> bool:
    """Save the member's zone (empty: their chat tool's or the company's) and hours (both
    empty: the company's); commits, audited."""
    values = {
        "time_zone": _zone(zone, "time_zone") if zone else None,
        "work_start": _clock(start, "work_start") if start else None,
        "work_end": _clock(end, "work_end") if end else None,
    }
    if bool(values["work_start"]) != bool(values["work_end"]):
        raise HoursError("work_end", str(_l("Give both a start and an end, or neither.")))
    if values["work_start"] and values["work_end"] and values["work_start"] >= values["work_end"]:
        raise HoursError("work_end", str(_l("The end must be later than the start.")))
    return _apply(
        user,
        dict(values),
        "member.hours_changed",
        organization=db.session.get(Organization, user.organization_id),
        actor=user,
        target=("user", user.id, user.name),
    )
