"""Every Slack method the sandbox serves answers with bodies valid under Slack's OpenAPI spec.

The spec (Swagger 2.0, `shared/specs/slack_web_openapi_v2.json`) describes each method's
success body under response "200" and its error body under "default". It writes unions as
`"items": [schema, schema]` on non-array schemas (e.g. `objs_user`, `tz`), which JSON Schema
would silently ignore; they are rewritten to `anyOf` here so the alternatives really apply.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft4Validator, FormatChecker

from sandbox.config import SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
from sandbox.testing import RunningSandbox
from tests.sandbox.flows import PORTAL, slack_install

SPEC = Path("/work/shared/specs/slack_web_openapi_v2.json")


def tuple_items_to_any_of(node: Any) -> Any:
    """Rewrite the spec's `items: [...]` unions on non-array schemas as `anyOf`."""
    if isinstance(node, list):
        return [tuple_items_to_any_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: tuple_items_to_any_of(value) for key, value in node.items()}
    if isinstance(result.get("items"), list) and result.get("type") != "array":
        result["anyOf"] = result.pop("items")
    return result


@cache
def spec() -> dict[str, Any]:
    """The parsed spec."""
    return json.loads(SPEC.read_text())


def validator(method: str, status: str) -> Draft4Validator:
    """Validator for one method's response ("200" or "default"), refs resolved in-document."""
    operations = spec()["paths"][f"/{method}"]
    operation = next(iter(operations.values()))
    schema = tuple_items_to_any_of(operation["responses"][status]["schema"])
    schema["definitions"] = tuple_items_to_any_of(spec()["definitions"])
    return Draft4Validator(schema, format_checker=FormatChecker())


def call(sandbox: RunningSandbox, method: str, token: str | None, **args: str) -> dict[str, Any]:
    """POST a Web API method as a form and return the JSON body (HTTP 200 expected)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(
        f"{sandbox.https_url}/slack/api/{method}",
        data=args,
        headers=headers,
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def token(sandbox: RunningSandbox) -> str:
    """A bot token of the demo workspace with every scope the portal asks for."""
    answer = call(
        sandbox,
        "oauth.v2.access",
        None,
        client_id=SLACK_CLIENT_ID,
        client_secret=SLACK_CLIENT_SECRET,
        code=slack_install(sandbox),
        redirect_uri=f"{PORTAL}/slack/oauth/callback",
    )
    validator("oauth.v2.access", "200").validate(answer)
    return str(answer["access_token"])


def test_spec_rewrite_makes_unions_effective() -> None:
    user_schema = validator("users.lookupByEmail", "200")
    bad_user = {"ok": True, "user": {"id": "nope", "name": "x"}}
    assert not user_schema.is_valid(bad_user)


def test_success_bodies_validate(sandbox: RunningSandbox, token: str) -> None:
    member = call(sandbox, "users.lookupByEmail", token, email="member01@demo.example")
    user_id = member["user"]["id"]
    channel = call(sandbox, "conversations.open", token, users=user_id)["channel"]["id"]
    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}])
    bodies = {
        "auth.test": call(sandbox, "auth.test", token),
        "users.list": call(sandbox, "users.list", token, limit="1000"),
        "users.lookupByEmail": member,
        "conversations.open": call(sandbox, "conversations.open", token, users=user_id),
        "chat.postMessage": call(
            sandbox, "chat.postMessage", token, channel=channel, text="hi", blocks=blocks
        ),
        "auth.revoke": call(sandbox, "auth.revoke", token, test="1"),
        "apps.uninstall": call(
            sandbox,
            "apps.uninstall",
            token,
            client_id=SLACK_CLIENT_ID,
            client_secret=SLACK_CLIENT_SECRET,
        ),
    }
    for method, body in bodies.items():
        assert body["ok"] is True, (method, body)
        errors = [e.message for e in validator(method, "200").iter_errors(body)]
        assert errors == [], method


def test_error_bodies_validate(sandbox: RunningSandbox, token: str) -> None:
    bodies = {
        "auth.test": call(sandbox, "auth.test", "xoxb-1-2-unknown"),
        "users.list": call(sandbox, "users.list", token, cursor="bm90LWEtY3Vyc29y"),
        "users.lookupByEmail": call(sandbox, "users.lookupByEmail", token, email="x@y.example"),
        "conversations.open": call(sandbox, "conversations.open", token, users="U0NOBODY00"),
        "chat.postMessage": call(
            sandbox, "chat.postMessage", token, channel="D0NOWHERE00", text="x"
        ),
        "auth.revoke": call(sandbox, "auth.revoke", None),
        "apps.uninstall": call(
            sandbox, "apps.uninstall", token, client_id=SLACK_CLIENT_ID, client_secret="wrong"
        ),
        "oauth.v2.access": call(
            sandbox,
            "oauth.v2.access",
            None,
            client_id=SLACK_CLIENT_ID,
            client_secret=SLACK_CLIENT_SECRET,
            code="used-or-unknown",
        ),
    }
    for method, body in bodies.items():
        assert body["ok"] is False, (method, body)
        errors = [e.message for e in validator(method, "default").iter_errors(body)]
        assert errors == [], method
