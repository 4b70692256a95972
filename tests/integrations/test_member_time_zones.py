"""Each member's time zone from their chat provider (issue 16, items 4 and 7): after a sync the
account's ``extra["tz"]`` is a valid IANA name or absent; Slack's ``tz`` as it comes, Graph's
mailbox ``timeZone`` mapped from Windows, read in JSON batches, never failing the sync."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from portal.extensions import db
from portal.integrations import directory
from portal.integrations.models import ChatAccount, Integration, SyncState
from portal.integrations.time_zones import NOT_A_PLACE, iana_from_windows, iana_or_none
from sandbox.testing import ControlError, RunningSandbox
from tests.integrations.conftest import calls
from tests.integrations.teams_flow import DEMO_TENANT_ID, connect
from tests.integrations.test_slack_delivery_events import post_event

TEAM = "T0DEMO0001"
MAILBOX = "microsoft:GET /graph/v1.0/users/{id}/mailboxSettings"
BATCH = "microsoft:POST /graph/v1.0/$batch"


def zone_of(integration: Integration, email: str) -> str | None:
    """The stored ``tz`` of the integration's account with that e-mail, or None."""
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id, ChatAccount.email == email
        )
    )
    assert account is not None, email
    db.session.refresh(account)
    return (account.extra or {}).get("tz")


def resync(integration: Integration) -> None:
    run = directory.start_sync(integration, None)
    db.session.refresh(run)
    assert run.state is SyncState.DONE, run.error


# --- the helper ------------------------------------------------------------------------------


@given(st.one_of(st.text(), st.text(alphabet="Asia/Tokyo.\x00 -_+"), st.integers(), st.none()))
@example("Asia/Tokyo")
@example("../etc/passwd")
@example("")
@example("UTC\x00")
@example("localtime")
@example("asia/tokyo")
@example("posix/Asia/Tokyo")
@example("Asia/Tokyo" * 10)
def test_any_value_is_none_or_a_zone_zoneinfo_loads(value: object) -> None:
    zone = iana_or_none(value)
    assert zone is None or (zone == value and ZoneInfo(zone).key == zone)


def test_the_helper_keeps_real_zones_and_refuses_the_rest() -> None:
    assert iana_or_none("America/New_York") == "America/New_York"
    assert all(iana_or_none(name) is None for name in ("../etc", "", "UTC\x00", "Factory", 9))
    assert all(iana_or_none(name) == name for name in available_timezones() - NOT_A_PLACE)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("Eastern Standard Time", "America/New_York"),
        ("Asia/Singapore", "Asia/Singapore"),  # Graph sometimes answers in IANA already
        ("Customized Time Zone", None),
        ("tokyo standard time", None),
        (None, None),
    ],
)
def test_windows_names_map_to_iana(graph: object, expected: str | None) -> None:
    assert iana_from_windows(graph) == expected


# --- Slack -----------------------------------------------------------------------------------


def test_slack_sync_stores_each_members_zone(slack: Integration) -> None:
    assert zone_of(slack, "member01@demo.example") == "Asia/Tokyo"
    assert zone_of(slack, "member10@demo.example") == "America/New_York"
    assert zone_of(slack, "member07@demo.example") == "America/Los_Angeles"


def test_a_moved_member_gets_the_new_zone_and_keeps_the_rest(
    live_server: str, slack: Integration, sandbox: RunningSandbox
) -> None:
    """By ``user_change`` and by the next sync alike; ``extra`` the directory does not own
    (the DM channel) stays."""
    account = db.session.scalar(select(ChatAccount).filter_by(email="member02@demo.example"))
    assert account is not None
    account.extra = {**account.extra, "dm_channel": "D0CACHED"}
    db.session.commit()
    answer = sandbox.control(
        "POST",
        "/_control/slack/people",
        {
            "team_id": TEAM,
            "action": "change",
            "email": "member02@demo.example",
            "tz": "Europe/Paris",
        },
    )
    assert answer["portal"] == 200
    assert zone_of(slack, "member02@demo.example") == "Europe/Paris"
    sandbox.state.slack.workspaces[TEAM].by_email["member02@demo.example"].tz = "Asia/Singapore"
    resync(slack)
    assert zone_of(slack, "member02@demo.example") == "Asia/Singapore"
    db.session.refresh(account)
    assert account.extra["dm_channel"] == "D0CACHED"


def test_the_sandbox_refuses_an_unknown_zone(slack: Integration, sandbox: RunningSandbox) -> None:
    with pytest.raises(ControlError, match="400"):
        sandbox.control(
            "POST",
            "/_control/slack/people",
            {
                "team_id": TEAM,
                "action": "change",
                "email": "member02@demo.example",
                "tz": "Mars/Base",
            },
        )


@pytest.mark.parametrize(
    "tz", ["../etc/passwd", "UTC\x00", "localtime", "Asia/Tokyo" * 20, 9, None, {"a": 1}, ["x"]]
)
def test_an_invalid_zone_in_a_signed_event_is_dropped(
    slack: Integration, admin_client: Any, sandbox: RunningSandbox, tz: object
) -> None:
    """The event still counts (the new name is stored); only the zone goes."""
    member = sandbox.state.slack.workspaces[TEAM].by_email["member03@demo.example"]
    assert zone_of(slack, "member03@demo.example") == "Asia/Singapore"
    user = member.to_api(with_email=True)
    user.update(tz=tz, real_name="改名 済子")
    user["profile"]["real_name"] = "改名 済子"
    body = json.dumps(
        {"type": "event_callback", "team_id": TEAM, "event_id": "EvTZ1",
         "event": {"type": "user_change", "user": user}}
    ).encode()  # fmt: skip
    assert post_event(admin_client, body).status_code == 200
    assert zone_of(slack, "member03@demo.example") is None
    account = db.session.scalar(select(ChatAccount).filter_by(email="member03@demo.example"))
    assert account is not None and account.name == "改名 済子"


# --- Microsoft Graph -------------------------------------------------------------------------


@pytest.fixture
def teams(admin_client: Any, sandbox: RunningSandbox) -> Integration:
    """Teams connected for デモ株式会社: the consent's directory sync has run."""
    assert connect(admin_client).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration is not None
    return integration


def test_graph_sync_maps_each_mailbox_zone_to_iana(
    teams: Integration, sandbox: RunningSandbox
) -> None:
    assert zone_of(teams, "member01@demo.example") == "Asia/Tokyo"
    assert zone_of(teams, "member10@demo.example") == "America/New_York"
    assert zone_of(teams, "member07@demo.example") == "America/Los_Angeles"
    assert zone_of(teams, "member17@demo.example") == "Europe/London"
    assert zone_of(teams, "member05@demo.example") is None  # no mailbox (404)
    # Every member but the guest, in one probe and then batches of 20.
    members = len(sandbox.state.microsoft.tenants[DEMO_TENANT_ID].users) - 1
    assert calls(sandbox, MAILBOX) == members
    assert calls(sandbox, BATCH) == 1 + -(-(members - 1) // 20)


def test_without_mailbox_settings_read_the_sync_goes_on_and_asks_once(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    sandbox.configure(mailbox_settings_permission=False)
    assert connect(admin_client).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration is not None
    run = directory.latest_sync(integration)
    assert run is not None and run.state is SyncState.DONE and run.fetched > 40
    accounts = db.session.scalars(select(ChatAccount).filter_by(integration_id=integration.id))
    assert not any("tz" in (account.extra or {}) for account in accounts)
    assert calls(sandbox, MAILBOX) == 1


def test_a_refused_or_failing_mailbox_keeps_the_zone_stored(
    teams: Integration, sandbox: RunningSandbox
) -> None:
    """A 5xx after the retries, or the permission withdrawn, says nothing new: the zone read
    earlier stays (only Graph saying "no mailbox" or "no zone" removes it)."""
    tenant = sandbox.state.microsoft.tenants[DEMO_TENANT_ID]
    member = tenant.find_user("member10@demo.example")
    assert member is not None
    member.time_zone = "Pacific Standard Time"
    sandbox.control(
        "POST",
        "/_control/faults/fail",
        {"match": f"/microsoft/graph/v1.0/users/{member.id}/mailboxSettings", "status": 503,
         "count": 10},
    )  # fmt: skip
    resync(teams)
    assert zone_of(teams, "member10@demo.example") == "America/New_York"
    sandbox.control("POST", "/_control/faults/clear")
    sandbox.configure(mailbox_settings_permission=False)
    resync(teams)
    assert zone_of(teams, "member10@demo.example") == "America/New_York"
    sandbox.configure(mailbox_settings_permission=True)
    resync(teams)
    assert zone_of(teams, "member10@demo.example") == "America/Los_Angeles"


def test_a_failing_mailbox_is_retried(teams: Integration, sandbox: RunningSandbox) -> None:
    member = sandbox.state.microsoft.tenants[DEMO_TENANT_ID].find_user("member30@demo.example")
    assert member is not None
    member.time_zone = "Singapore Standard Time"
    sandbox.control(
        "POST",
        "/_control/faults/fail",
        {"match": f"/microsoft/graph/v1.0/users/{member.id}/mailboxSettings", "status": 503,
         "count": 2},
    )  # fmt: skip
    resync(teams)
    assert zone_of(teams, "member30@demo.example") == "Asia/Singapore"


def test_throttled_mailboxes_wait_out_retry_after(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    """Graph throttles the requests of a batch one by one (429 + Retry-After in each answer):
    those are asked again once the wait is over, and every member still gets a zone."""
    sandbox.configure(rate_limit_overrides={"microsoft:graph": [[25, 1]]})
    assert connect(admin_client).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="teams"))
    assert integration is not None
    assert zone_of(integration, "member30@demo.example") == "America/New_York"
    assert zone_of(integration, "member37@demo.example") == "Europe/London"
    members = len(sandbox.state.microsoft.tenants[DEMO_TENANT_ID].users) - 1
    assert calls(sandbox, MAILBOX) > members  # the throttled ones, asked twice
