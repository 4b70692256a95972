"""Where a member's notifications go, category by category, in plain language: the
member's preferences page and the support console show the same rows."""

from __future__ import annotations

from flask_babel import gettext as _

from ..accounts.models import Organization, User
from ..database import utcnow
from ..notifications import routing
from ..notifications.explain import explain_route, local_time
from . import categories, choices, hours
from .models import CHANNEL_KINDS


def rows(user: User, organization: Organization) -> list[dict[str, object]]:
    """Each category with the member's option, what may be chosen, and where the next
    notification of it would go now (their preferences page, the support console)."""
    stored = choices.stored(user)
    rows = []
    for category in categories.all_for(organization):
        preference = stored.get(category.id)
        route = routing.decide(routing.situation(user, category))
        next_one = explain_route(route)
        schedule = hours.schedule_for(user, organization, category)
        if schedule and not route.off:
            next_one += " " + _(
                "Goes into the digest of %(when)s %(zone)s.",
                **local_time(schedule.next_at(utcnow())),
            )
        digest = choices.digest_of(preference)
        rows.append(
            {
                "category": category,
                "option": choices.option_of(category, preference),
                "allowed": [o for o in choices.OPTIONS if choices.allowed(category, o)],
                "locked": [kind for kind in CHANNEL_KINDS if category.locked(kind)],
                "next": next_one,
                "digest": digest,
            }
        )
    return rows
