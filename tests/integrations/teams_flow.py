"""Walking "Microsoft Teamsと連携する" against the sandbox, as a browser would."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from sandbox.config import DEMO_TENANT_ID, SAMPLE_TENANT_ID

CONSENT = "/settings/integrations/teams/consent"
__all__ = ["CONSENT", "DEMO_TENANT_ID", "SAMPLE_TENANT_ID", "connect", "consent", "start_consent"]


def start_consent(client: Any) -> str:
    """Press "Microsoft Teamsと連携する"; return the sandbox admin consent URL."""
    response = client.post_form(CONSENT)
    assert response.status_code == 302, response.text[:300]
    return str(response.headers["Location"])


def consent(consent_url: str, decision: str = "allow", tenant: str = DEMO_TENANT_ID) -> str:
    """Answer the sandbox consent page; return the portal callback path with its query."""
    page = requests.get(consent_url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    answer = requests.post(
        page.url,
        data={"decision": decision, "tenant_choice": tenant},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    parts = urlsplit(answer.headers["Location"])
    return f"{parts.path}?{parts.query}"


def with_query(callback: str, **changes: str) -> str:
    """The callback path with some query parameters replaced (an edited redirect)."""
    path, _, query = callback.partition("?")
    values = {k: v[0] for k, v in parse_qs(query).items()}
    values.update(changes)
    return f"{path}?{urlencode(values)}"


def connect(client: Any, tenant: str = DEMO_TENANT_ID) -> Any:
    """The whole consent: button → consent (承諾) → callback; return the callback response."""
    return client.get(consent(start_consent(client), tenant=tenant))
