"""Chatwork: each company's own OAuth client, consent as the notification account, contacts, DMs.

Setup (the vendor's "ChatWorkの連携方法", ``setup.py``): the admin registers an OAuth client on
Chatwork, enters its client ID and secret here and allows access on Chatwork's consent page;
there is no service-wide app. Everything is posted as the connecting account; the directory is
its contacts (no e-mail), so members are matched by name (``name_matching.py``).

Settings: CHATWORK_AUTHORIZE_URL, CHATWORK_TOKEN_URL, CHATWORK_API_URL, CHATWORK_WWW_URL (and
PROVIDER_CA_BUNDLE for the sandbox only). Optional: CHATWORK_RATE_LIMIT (300) and
CHATWORK_RATE_WINDOW (300 s) — the per-token limit the pacing stays under.

The package: ``client.py`` (API v2, tokens), ``setup.py`` (the wizard), ``name_matching.py``,
``page.py`` (the connected page's values), ``views.py`` (the suggestions), ``templates/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from flask import current_app
from flask_babel import lazy_gettext as _l

from ...directory import start_sync
from ...models import Integration
from ...registry import providers
from ...wizard import Step
from ..base import (
    ChatProvider,
    ConnectionData,
    CoverageReason,
    PacingBudget,
    ProviderError,
    URLSetting,
)
from . import name_matching, page, setup, views  # noqa: F401  (views: the suggestion routes)
from .client import ChatworkClient
from .sign_in import ChatworkSignIn

#: The pacing bucket's burst; the rate is set so burst + rate x window stays under the limit,
#: with a few requests left for the contacts sync and GET /me.
BURST = 10
RESERVE = 5


@providers.register
class ChatworkProvider(ChatProvider):
    """Chatwork: the organization's own OAuth client, contacts as the directory, DMs."""

    key = "chatwork"
    name = "Chatwork"
    order = 20
    url_settings = (
        URLSetting("CHATWORK_WWW_URL", "https://www.chatwork.com", "/chatwork/www", browser=True),
        URLSetting(
            "CHATWORK_AUTHORIZE_URL",
            "https://www.chatwork.com/packages/oauth2/login.php",
            "/chatwork/www/packages/oauth2/login.php",
            browser=True,
        ),
        URLSetting(
            "CHATWORK_TOKEN_URL",
            "https://oauth.chatwork.com/token",
            "/chatwork/oauth/token",
        ),
        URLSetting("CHATWORK_API_URL", "https://api.chatwork.com/v2", "/chatwork/api/v2"),
    )
    consent_settings = ("CHATWORK_AUTHORIZE_URL",)
    rate_per_second = 1.0
    coverage_reasons: ClassVar[Mapping[str, CoverageReason]] = {
        "suggestion_available": CoverageReason(
            _l("The name matches one Chatwork contact: a suggestion is ready"),
            _l("Review the suggestions"),
            "integrations.provider",
            anchor="chatwork-suggestions",
        ),
        "ambiguous_name": CoverageReason(
            _l("The name matches several Chatwork contacts"),
            _l("Choose the account by hand"),
            args=(("state", "unlinked"),),
        ),
        "not_contact": CoverageReason(
            _l("Not a Chatwork contact of the connected account"),
            _l("Send a contact request, then re-sync"),
            "integrations.provider",
            anchor="chatwork-not-contacts",
            resync=True,
        ),
    }
    setup_preparation = (
        _l("Prepare the Chatwork account"),
        _l("Register an OAuth client on Chatwork"),
    )

    def client(self, integration: Integration) -> ChatworkClient:
        return ChatworkClient(integration)

    def pacing(self, integration: Integration) -> PacingBudget:
        """One bucket per connected account (= per token): ``BURST`` + rate x window stays a
        few requests under Chatwork's 300 requests / 5 minutes."""
        return PacingBudget(f"chatwork:{integration.external_id}", self.send_rate(), BURST)

    def unlinked_reasons(
        self, integration: Integration, user_ids: Sequence[int]
    ) -> Mapping[int, str]:
        """Contacts carry no e-mail, so "no e-mail match" says nothing here: a member's name
        matches one contact (a suggestion), several, or none (not a contact of the account)."""
        reasons = name_matching.suggest(integration, sample=0).reasons
        return {user_id: reasons[user_id] for user_id in user_ids if user_id in reasons}

    def refreshes_tokens(self, integration: Integration) -> bool:
        """The 15-30-minute access token is refreshed on use (offline_access: the refresh token
        does not expire)."""
        return True

    @staticmethod
    def send_rate() -> float:
        """Messages per second the worker may send for one token."""
        config = current_app.config
        limit = float(config.get("CHATWORK_RATE_LIMIT", 300))
        window = float(config.get("CHATWORK_RATE_WINDOW", 300))
        return max(0.01, (limit - BURST - RESERVE) / window)

    def likely_accounts(
        self, integration: Integration, users: Sequence[tuple[int, str]]
    ) -> Mapping[int, int]:
        """The name suggestions (full/half width, spaces and name order ignored)."""
        wanted = {user_id for user_id, _name in users}
        return {
            s.user_id: s.account_id
            for s in name_matching.suggest(integration, sample=0).suggestions
            if s.user_id in wanted
        }

    def member_sign_in(self) -> ChatworkSignIn:
        """Members authorize the company's client as themselves; the portal accepts their
        contact request to the notification account when they are not a contact yet."""
        return ChatworkSignIn()

    def setup_steps(self) -> list[Step]:
        return setup.setup_steps(self)

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        """Never used: the callback step exchanges with the wizard's own credentials."""
        raise ProviderError("no client credentials", code="no_client")

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
        return setup.build_connection(data)

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:
        """Read the contacts in the background (progress on the page)."""
        start_sync(integration, actor_id)

    def page_context(self, integration: Integration) -> dict[str, Any]:
        """The connected account's client form, the backlog and the name suggestions."""
        return page.connected_context(integration, self.send_rate())
