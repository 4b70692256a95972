"""Walking "Add to Slack" against the sandbox, as a browser would (shared by the Slack tests)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.testing import RunningSandbox

INSTALL = "/settings/integrations/slack/install"


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect target."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start_install(client: Any) -> str:
    """Press "Add to Slack"; return the sandbox consent URL the portal redirected to."""
    response = client.post_form(INSTALL)
    assert response.status_code == 302, response.text[:300]
    return str(response.headers["Location"])


def consent(
    sandbox: RunningSandbox,
    authorize_url: str,
    decision: str = "allow",
    channel: str = "general",
    team: str = "T0DEMO0001",
) -> str:
    """Answer the sandbox consent page; return the portal callback path with its query."""
    url = authorize_url + f"&team={team}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    channels = {name: cid for cid, name in sandbox.state.slack.workspaces[team].channels}
    answer = requests.post(
        page.url,
        data={"decision": decision, "channel": channels.get(channel, "")},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    parts = urlsplit(answer.headers["Location"])
    return f"{parts.path}?{parts.query}"


def install(client: Any, sandbox: RunningSandbox, team: str = "T0DEMO0001") -> Any:
    """The whole install: Add to Slack → consent (#general) → callback; return the response."""
    callback = consent(sandbox, start_install(client), team=team)
    return client.get(callback)
