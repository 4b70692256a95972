"""PT-22: the only routes without CSRF protection are the ones authenticated otherwise."""

from __future__ import annotations

from typing import Any

from portal.extensions import csrf

#: Signed webhooks (Slack signing secret, Bot Framework JWT) and the API-key JSON API.
ALLOWED_VIEWS = {
    "portal.integrations.providers.slack.views.slack_events",
    "portal.integrations.providers.slack.views.slack_interactions",
    "portal.integrations.providers.teams.views.teams_messages",
}
ALLOWED_BLUEPRINTS = {"api"}


def test_pt22_csrf_exempt_routes_are_on_the_allow_list(app: Any) -> None:
    assert set(csrf._exempt_views) <= ALLOWED_VIEWS
    assert {bp.name for bp in csrf._exempt_blueprints} <= ALLOWED_BLUEPRINTS


def test_pt23_webhooks_without_signature_are_refused(client: Any) -> None:
    assert (
        client.post("/slack/events", data=b"{}", content_type="application/json").status_code == 401
    )
    assert client.post("/api/v1/notifications", json={}).status_code == 401
