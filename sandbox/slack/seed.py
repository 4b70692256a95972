"""Seeded Slack workspaces that match the portal's demo organizations.

Demo workspace "デモ株式会社" (T0DEMO0001): member01-34 use their portal e-mail; member35 is
deactivated; member36 is a guest; member37-39 sign in with a different address
(`s.tanaka@demo-corp.example` style) so auto-link misses them; member40 is an invitee who has not
joined yet. Slackbot, the app's bot user, another app's bot, a former employee and an external
single-channel guest complete the list, as in a real workspace. Most live in Tokyo, a few
abroad (``sandbox.zones``).
"""

from __future__ import annotations

import random

import demodata
from demodata import Person
from sandbox.config import DEMO_SLACK_TEAM_ID, SAMPLE_SLACK_TEAM_ID
from sandbox.ids import short_id
from sandbox.slack.models import SlackData, SlackUser, SlackWorkspace
from sandbox.zones import home_zone

CHANNELS = ("general", "random", "hr-notice")


def build_slack() -> SlackData:
    """The seeded workspaces: demo and sample."""
    demo = build_workspace(
        DEMO_SLACK_TEAM_ID,
        "デモ株式会社",
        "demo-corp",
        demodata.members(demodata.DEMO_MEMBER_COUNT, "demo.example"),
        admin_email="admin@demo.example",
        alt_domain="demo-corp.example",
        special={35: "deleted", 36: "guest", 37: "other", 38: "other", 39: "other", 40: "invited"},
    )
    _add_demo_extras(demo)
    sample = build_workspace(
        SAMPLE_SLACK_TEAM_ID,
        "サンプル商事",
        "sample-shoji",
        demodata.members(demodata.SAMPLE_MEMBER_COUNT, "sample.example"),
        admin_email="admin@sample.example",
        alt_domain="sample-shoji.example",
        special={},
    )
    return SlackData(workspaces={demo.team_id: demo, sample.team_id: sample})


def generate_workspace(
    team_id: str, name: str, count: int, domain: str, match_ratio: float, seed: int = 1
) -> SlackWorkspace:
    """A benchmark workspace of `count` members; `match_ratio` of them share the portal e-mail."""
    people = demodata.members(count, domain)
    rng = random.Random(seed)
    misses = rng.sample(range(1, count + 1), count - round(count * match_ratio))
    return build_workspace(
        team_id,
        name,
        team_id.lower(),
        people,
        admin_email=f"admin@{domain}",
        alt_domain=f"alt.{domain}",
        special=dict.fromkeys(misses, "other"),
    )


def build_workspace(
    team_id: str,
    name: str,
    slug: str,
    people: list[Person],
    *,
    admin_email: str,
    alt_domain: str,
    special: dict[int, str],
) -> SlackWorkspace:
    """A workspace with Slackbot, the app's bot user, an admin and one user per person.

    `special` marks people by number: deleted, guest, invited, or other (a different e-mail).
    """
    bot_user_id = short_id("U", team_id, "bot-user")
    users = [
        SlackUser(
            id="USLACKBOT",
            team_id=team_id,
            name="slackbot",
            real_name="Slackbot",
            display_name="Slackbot",
            email=None,
        ),
        SlackUser(
            id=bot_user_id,
            team_id=team_id,
            name="wistant",
            real_name="Wistant",
            display_name="",
            email=None,
            is_bot=True,
            bot_id=short_id("B", team_id, "bot"),
        ),
        SlackUser(
            id=short_id("U", team_id, admin_email),
            team_id=team_id,
            name="admin",
            real_name="システム管理者",
            display_name="admin",
            email=admin_email,
            is_admin=True,
            is_owner=True,
        ),
    ]
    used: set[str] = set()
    for person in people:
        users.append(_user(team_id, person, special.get(person.number), alt_domain, used))
    return SlackWorkspace(
        team_id=team_id,
        name=name,
        domain=slug,
        users=users,
        channels=[(short_id("C", team_id, channel), channel) for channel in CHANNELS],
        bot_user_id=bot_user_id,
        bot_id=short_id("B", team_id, "bot"),
        installer_id=users[2].id,
    )


def _user(
    team_id: str, person: Person, role: str | None, alt_domain: str, used: set[str]
) -> SlackUser:
    email = person.email
    if role == "other":
        email = f"{person.given_roman[0].lower()}.{person.family_roman.lower()}@{alt_domain}"
        if email in used:  # big generated workspaces repeat names
            email = email.replace("@", f"{person.number}@")
    used.add(email)
    handle = f"{person.given_roman}.{person.family_roman}".lower()
    display = ("", handle, person.family, person.name)[person.number % 4]
    return SlackUser(
        id=short_id("U", team_id, person.email),
        team_id=team_id,
        name=handle,
        real_name=person.name,
        display_name=display,
        email=email,
        first_name=person.given,
        last_name=person.family,
        deleted=role == "deleted",
        is_restricted=role == "guest",
        is_invited_user=role == "invited",
        tz=home_zone(person.number),
    )


def _add_demo_extras(workspace: SlackWorkspace) -> None:
    team = workspace.team_id
    workspace.users += [
        SlackUser(
            id=short_id("U", team, "calendar-bot"),
            team_id=team,
            name="google_calendar",
            real_name="Google Calendar",
            display_name="",
            email=None,
            is_bot=True,
            bot_id=short_id("B", team, "calendar"),
        ),
        SlackUser(
            id=short_id("U", team, "former"),
            team_id=team,
            name="former.employee",
            real_name="退職 済子",
            display_name="",
            email="former01@demo.example",
            deleted=True,
        ),
        SlackUser(
            id=short_id("U", team, "partner"),
            team_id=team,
            name="partner",
            real_name="Partner Guest",
            display_name="partner",
            email="guest@partner.example",
            is_restricted=True,
            is_ultra_restricted=True,
        ),
    ]
    workspace.reindex()
