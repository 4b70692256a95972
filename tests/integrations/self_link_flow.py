"""Walking "Connect my account" against the sandbox's sign-in pages, as a member's browser would
(shared by the self-link tests of every provider)."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import select

from portal.extensions import db
from portal.integrations.models import AccountLink, Integration
from tests.integrations.slack_flow import query_of


def start(client: Any, provider: str) -> str:
    """Press 「自分の…アカウントを連携する」; the provider's sign-in URL the portal sent us to."""
    response = client.post_form(f"/me/accounts/{provider}/connect")
    assert response.status_code == 302, response.text[:300]
    return str(response.headers["Location"])


def sign_in(authorize_url: str, user: str, decision: str = "allow", **extra: str) -> str:
    """Answer the sandbox's sign-in page as ``user``; the portal callback path and query."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    fields = {**query_of(authorize_url), "user": user, "decision": decision, **extra}
    answer = requests.post(page.url.split("?")[0], data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    location = answer.headers["Location"]
    return location[location.index("/me/") :]


def own_link(user: Any, provider: str | None = None) -> AccountLink | None:
    """The member's link (in ``provider``'s integration, when given)."""
    query = select(AccountLink).where(AccountLink.user_id == user.id)
    if provider is not None:
        query = query.join(Integration, Integration.id == AccountLink.integration_id).where(
            Integration.provider == provider
        )
    return db.session.scalars(query).first()
