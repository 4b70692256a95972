"""A fourth chat provider that lives under tests/ only: the proof that a provider is one
package and one registration, with no file under portal/ edited (issue 14, item 7).

Files: ``__init__.py`` (this descriptor), ``client.py``, ``setup.py``, ``service.py`` (the
in-process stand-in for the chat service, instead of a sandbox), ``templates/``. The tests
register it (``providers.register(FourthProvider)``) and take it away again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.extensions import db
from portal.integrations.directory import start_sync
from portal.integrations.models import AccountLink, ChatAccount, Integration
from portal.integrations.providers.base import (
    ChatProvider,
    ConnectionData,
    CoverageReason,
    Setting,
    URLSetting,
)
from portal.integrations.wizard import Step

from . import setup
from .client import FourthClient

ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
    "%3Ccircle cx='16' cy='16' r='14' fill='%23444'/%3E%3C/svg%3E"
)


class FourthProvider(ChatProvider):
    """Fourth Chat: a workspace ID, OAuth consent, a paged directory with e-mail, DMs."""

    key = "fourth"
    name = "Fourth Chat"
    order = 40
    url_settings = (
        URLSetting(
            "FOURTH_AUTHORIZE_URL",
            "https://consent.fourth.example/oauth/authorize",
            "/fourth/oauth/authorize",
            browser=True,
        ),
    )
    settings = (Setting("FOURTH_CLIENT_ID", sandbox="fourth-sandbox-client"),)
    consent_settings = ("FOURTH_AUTHORIZE_URL",)
    links_by_email = True
    coverage_reasons: ClassVar[Mapping[str, CoverageReason]] = {
        "fourth_guest": CoverageReason(
            "Linked to a guest account, which gets no DMs",
            "Review these links",
            args=(("state", "linked"),),
            linked=True,
        ),
        "fourth_not_invited": CoverageReason(
            "Not invited to the Fourth workspace",
            "Invite them, then re-sync",
            "integrations.provider",
            resync=True,
        ),
    }

    def client(self, integration: Integration) -> FourthClient:
        return FourthClient(integration)

    def icon_url(self) -> str:
        return ICON

    def setup_steps(self) -> list[Step]:
        return setup.setup_steps(self)

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        return setup.exchange_code(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
        return setup.build_connection(data)

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:
        start_sync(integration, actor_id)

    def page_context(self, integration: Integration) -> dict[str, Any]:
        return {"guests": _guest_count(integration)}

    def unreachable_reason(self, extra: Mapping[str, Any]) -> str | None:
        return "fourth_guest" if extra.get("guest") else None

    def unlinked_reasons(
        self, integration: Integration, user_ids: Sequence[int]
    ) -> Mapping[int, str]:
        """Members whose e-mail is nowhere in the directory were never invited."""
        known = set(
            db.session.scalars(
                select(func.lower(ChatAccount.email)).where(
                    ChatAccount.integration_id == integration.id, ChatAccount.email.is_not(None)
                )
            )
        )
        members = db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
        return {
            user_id: "fourth_not_invited"
            for user_id, email in members
            if (email or "").lower() not in known
        }


def _guest_count(integration: Integration) -> int:
    guests = ChatAccount.extra["guest"].as_boolean().is_(True)
    return (
        db.session.scalar(
            select(func.count())
            .select_from(AccountLink)
            .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
            .where(AccountLink.integration_id == integration.id, guests)
        )
        or 0
    )
