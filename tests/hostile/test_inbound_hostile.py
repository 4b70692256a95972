"""/slack/events and /teams/messages under hostile input (issue 12, classes 1, 3 and 5).

Unsigned or unauthenticated requests are refused before their body is parsed; signed but
malformed ones are a 400 with the JSON error body (Slack's with ``X-Slack-No-Retry``) and
change nothing; nothing is ever a 5xx.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.integrations.models import ChatAccount, InboundEvent, Integration, IntegrationState
from sandbox.slack.events import sign
from tests.hostile.strategies import bombs, dumps, huge_ints, json_values, paths, replace_at
from tests.integrations.test_teams_bot_auth import activity, token

FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(InboundEvent)) or 0


# --- Slack -------------------------------------------------------------------------------


def slack_post(client: Any, body: bytes, signed: bool = True) -> Any:
    stamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(stamp)}
    headers["X-Slack-Signature"] = sign(body, stamp) if signed else "v0=" + "0" * 64
    return client.post("/slack/events", data=body, headers=headers)


def revoked(tokens: Any, team: str = "T0DEMO0001", event_id: str = "EvR1") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": team,
        "event_id": event_id,
        "event": {"type": "tokens_revoked", "tokens": tokens},
    }


@pytest.fixture
def workspace(tenants: dict[str, Any]) -> Integration:
    """A connected Slack workspace whose bot is UBOT (no sandbox needed for events)."""
    integration = Integration(
        organization_id=tenants["own"].id,
        provider="slack",
        state=IntegrationState.CONNECTED,
        external_id="T0DEMO0001",
        display_name="デモ",
        config={"bot_user_id": "UBOT"},
    )
    db.session.add(integration)
    db.session.commit()
    return integration


def assert_refused(response: Any, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.get_json()
    assert body["error"] and body["detail"]


def test_slack_nesting_bombs_are_400_signed_and_401_unsigned(
    client: Any, workspace: Integration
) -> None:
    for opener in "[{":
        bomb = ('{"type":"event_callback","event":' + "[" * 50_000 + "]" * 50_000 + "}").encode()
        if opener == "{":
            bomb = ('{"a":' * 20_000 + "1" + "}" * 20_000).encode()
        response = slack_post(client, bomb)
        assert_refused(response)
        assert response.headers["X-Slack-No-Retry"] == "1"
        assert_refused(slack_post(client, bomb, signed=False), 401)
    assert stored() == 0


@pytest.mark.parametrize(
    "tokens",
    ["UBOT", ["UBOT"], 7, None, {"bot": "UBOT"}, {"bot": 5}, {"bot": [1, 2]}, {"bot": [["UBOT"]]}],
)
def test_slack_tokens_revoked_of_the_wrong_shape_changes_nothing(
    client: Any, workspace: Integration, tokens: Any
) -> None:
    response = slack_post(client, dumps(revoked(tokens)))
    assert_refused(response)
    assert response.headers["X-Slack-No-Retry"] == "1"
    db.session.refresh(workspace)
    assert workspace.state is IntegrationState.CONNECTED  # "UBOT" is no substring match
    assert stored() == 0  # not recorded, so nothing was half-applied


def test_slack_well_formed_tokens_revoked_still_disconnects(
    client: Any, workspace: Integration
) -> None:
    response = slack_post(client, dumps(revoked({"oauth": [], "bot": ["UBOT"]})))
    assert response.status_code == 200
    db.session.refresh(workspace)
    assert workspace.state is not IntegrationState.CONNECTED


def test_slack_huge_integers_and_unknown_events(client: Any, workspace: Integration) -> None:
    for number in (2**63, -(2**64), 10**30):
        assert_refused(slack_post(client, dumps({**revoked({"bot": []}), "event_time": number})))
    unknown = {**revoked({}), "event": {"type": "member_joined_channel", "user": 2**40}}
    assert slack_post(client, dumps(unknown)).status_code == 200  # acknowledged, unread


VALID_SLACK = revoked({"oauth": [], "bot": ["UOTHER"]})


@settings(max_examples=250, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_slack_any_signed_mutation_is_a_clean_answer(
    client: Any, workspace: Integration, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(paths(VALID_SLACK)))
    value = data.draw(json_values | huge_ints)
    mutated = replace_at(VALID_SLACK, path, value)
    mutated_id = (
        {**mutated, "event_id": f"Ev{data.draw(st.integers(0, 10**9))}"}
        if isinstance(mutated, dict) and isinstance(mutated.get("event_id"), str)
        else mutated
    )
    response = slack_post(client, dumps(mutated_id))
    assert response.status_code < 500, response.text[:300]
    assert response.status_code in (200, 400), response.text[:300]
    db.session.refresh(workspace)
    assert workspace.state is IntegrationState.CONNECTED  # UOTHER is not our bot


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
@given(raw=bombs | st.binary(max_size=300))
def test_slack_any_signed_body_is_a_clean_answer(
    client: Any, workspace: Integration, raw: bytes
) -> None:
    response = slack_post(client, raw)
    try:
        raw.decode("utf-8")
        expected: tuple[int, ...] = (200, 400, 413)
    except UnicodeDecodeError:
        expected = (401,)  # slack_sdk cannot compute a signature over non-UTF-8 bytes
    assert response.status_code in expected, response.text[:300]


#: A new hire, as Slack's team_join carries them (users.list shape): issue 15's lifecycle.
VALID_JOIN = {
    "type": "event_callback",
    "team_id": "T0DEMO0001",
    "event_id": "EvJ1",
    "event": {
        "type": "team_join",
        "user": {
            "id": "UNEW0001",
            "name": "new.hire",
            "real_name": "新入 社員",
            "deleted": False,
            "is_bot": False,
            "tz": "Asia/Tokyo",
            "profile": {"email": "newhire@demo.example", "real_name": "新入 社員"},
        },
    },
}


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_slack_any_signed_mutation_of_a_team_join_is_a_clean_answer(
    client: Any, workspace: Integration, data: st.DataObject
) -> None:
    """Wrong types, 64-bit-plus integers, control characters anywhere inside a validly signed
    team_join: a 200 or a 400, never a 5xx, and a 400 stores nobody."""
    path = data.draw(st.sampled_from(paths(VALID_JOIN)))
    mutated = replace_at(VALID_JOIN, path, data.draw(json_values | huge_ints))
    if isinstance(mutated, dict) and isinstance(mutated.get("event_id"), str):
        mutated = {**mutated, "event_id": f"EvJ{data.draw(st.integers(0, 10**9))}"}
    before = db.session.scalar(select(func.count()).select_from(ChatAccount))
    response = slack_post(client, dumps(mutated))
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert db.session.scalar(select(func.count()).select_from(ChatAccount)) == before


# --- Teams -------------------------------------------------------------------------------


def teams_post(client: Any, body: bytes, bearer: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return client.post("/teams/messages", data=body, headers=headers)


def test_teams_bombs_are_401_before_parsing_without_a_token(client: Any, keys: Any) -> None:
    for raw in (b"[" * 200_000, ('{"a":' * 40_000).encode()):
        assert_refused(teams_post(client, raw, None), 401)
        assert_refused(teams_post(client, raw, "not-a-jwt"), 401)
    assert keys.fetches == 0  # the garbage token was refused without asking for keys


def test_teams_bombs_and_huge_integers_with_a_valid_token_are_400(client: Any, keys: Any) -> None:
    valid = token()
    assert_refused(teams_post(client, b"[" * 50_000 + b"]" * 50_000, valid))
    assert_refused(teams_post(client, dumps(activity(id=2**64)), valid))
    assert_refused(teams_post(client, dumps(activity(membersAdded="28:bot")), valid))
    assert_refused(teams_post(client, dumps(activity(conversation=["a:1"])), valid))
    assert stored() == 0


VALID_TEAMS = activity(type="installationUpdate", action="add")


@settings(max_examples=250, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_teams_any_authenticated_mutation_is_a_clean_answer(
    client: Any, keys: Any, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(paths(VALID_TEAMS)))
    mutated = replace_at(VALID_TEAMS, path, data.draw(json_values | huge_ints))
    response = teams_post(client, dumps(mutated), token())
    assert response.status_code in (200, 400, 401), response.text[:300]


def test_teams_valid_activity_still_passes(client: Any, keys: Any) -> None:
    assert teams_post(client, json.dumps(activity()).encode(), token()).status_code == 200
