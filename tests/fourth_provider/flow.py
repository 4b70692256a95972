"""Walking the fourth provider's setup as a browser and the service would."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import Integration

from .service import SERVICE

PAGE = "/settings/integrations/fourth"


def start(client: Any, workspace: str = "W0FOURTH") -> dict[str, str]:
    """Name the workspace; return the consent URL's query (the engine sent the browser there)."""
    response = client.post_form(f"{PAGE}/workspace", {"workspace": workspace})
    assert response.status_code == 302, response.text[:300]
    location = str(response.headers["Location"])
    assert location.startswith(str(client.application.config["FOURTH_AUTHORIZE_URL"]))
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def come_back(client: Any, query: dict[str, str]) -> Any:
    """The admin allows the app on the service, which redirects to the portal's callback."""
    code = SERVICE.consent(query["redirect_uri"])
    return client.get(
        f"/fourth/oauth/callback?{urlencode({'code': code, 'state': query['state']})}"
    )


def connect(client: Any) -> Integration:
    """The whole setup: workspace, consent, callback; the directory is synced after it."""
    assert come_back(client, start(client)).status_code == 302
    integration = db.session.scalar(select(Integration).filter_by(provider="fourth"))
    assert integration is not None
    return integration
