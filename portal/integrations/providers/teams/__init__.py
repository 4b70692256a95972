"""Microsoft Teams: Entra ID admin consent, Graph directory, the bot's greeting and DMs.

Vendor setup (one app for the whole service, providers.md §3.1):
- Entra ID app registration, multi-tenant, with a client secret (MS_APP_ID, MS_CLIENT_SECRET);
  application permissions (Graph) ``User.Read.All``; to install the app for members who never
  added the bot (``installs.py``), ``TeamsAppInstallation.ReadWriteSelfForUser.All``, with
  ``webApplicationInfo`` in the app manifest; and, for each member's time zone (their mailbox
  settings, read by the directory sync so notifications can wait for working hours in it,
  ``mailbox.py``), ``MailboxSettings.Read``; without it the sync goes on, minus the time
  zones. Redirect URIs exactly
  ``PUBLIC_BASE_URL + /teams/oauth/callback`` (admin consent) and
  ``PUBLIC_BASE_URL + /me/accounts/teams/callback`` (members' own sign-in, ``sign_in.py``).
- Azure Bot resource on the same app id, Teams channel on, messaging endpoint
  ``PUBLIC_BASE_URL + /teams/messages``.
- A Teams app package whose ``bots[].botId`` is the app id (personal scope), named
  TEAMS_BOT_NAME, published to the customer's org catalog or the Store.
Settings: MS_CONSENT_URL, MS_LOGIN_URL, MS_GRAPH_URL, BOTFRAMEWORK_OPENID_URL,
TEAMS_SERVICE_URL_HOSTS; optional MS_BOT_TENANT_ID (single-tenant bot; default
``botframework.com``), TEAMS_APP_ID (the manifest id: the install link and the org-catalog
lookup) and TEAMS_SERVICE_URL (the Bot Connector for conversations that came from Graph).

The package: ``tokens.py`` (msal), ``client.py`` (Graph, Bot Connector, Adaptive Cards),
``mailbox.py`` (members' time zones), ``pacing.py`` (the Graph call gate),
``setup.py`` (admin consent), ``botframework.py`` (the inbound JWT), ``inbound.py`` (install and
uninstall activities), ``views.py`` (``POST /teams/messages``, the bot-installs region),
``templates/``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from flask import current_app
from flask_babel import lazy_gettext as _l

from ...directory import start_sync
from ...models import ChatAccount, Integration
from ...registry import providers
from ...wizard import Step
from ..base import (
    ChatProvider,
    ConnectionData,
    CoverageReason,
    PacingBudget,
    Setting,
    URLSetting,
)
from . import setup, views  # noqa: F401  (views: registers POST /teams/messages)
from .client import TeamsClient
from .sign_in import TeamsSignIn

log = logging.getLogger("portal.integrations.teams")

#: Teams per-app-per-tenant limit is 30 requests/s (the msteams-docs figure; a live copy says
#: 50): 28/s with bursts of 2 never exceeds 30 in any one-second window (burst + rate x 1 s),
#: and is 0.93 of it. Not learned like Slack's: a one-second window would probe every second.
TENANT_RATE, TENANT_BURST = 28.0, 2
#: Per conversation (one member's chat): 7/1 s, 8/2 s, 60/30 s, 1800/h. 0.49/s with a burst of
#: 7 stays under all four.
CONVERSATION_RATE, CONVERSATION_BURST = 0.49, 7


def conversation_budget(conversation: str) -> PacingBudget:
    """The bucket of one member's conversation, shared by every worker (keyed on a hash: the
    id is long and says who talks to whom)."""
    digest = hashlib.sha256(conversation.encode()).hexdigest()[:32]
    return PacingBudget(f"teams:conversation:{digest}", CONVERSATION_RATE, CONVERSATION_BURST)


@providers.register
class TeamsProvider(ChatProvider):
    """Microsoft Teams tenants: admin consent, then each member adds the bot."""

    key = "teams"
    name = "Microsoft Teams"
    order = 30
    url_settings = (
        URLSetting(
            "MS_CONSENT_URL",
            "https://login.microsoftonline.com",
            "/microsoft/login",
            browser=True,
        ),
        URLSetting("MS_LOGIN_URL", "https://login.microsoftonline.com", "/microsoft/login"),
        URLSetting("MS_GRAPH_URL", "https://graph.microsoft.com", "/microsoft/graph"),
        # Where proactive messages go for a member whose conversation came from Graph (the
        # app installed for them) rather than from an activity: the public cloud's default.
        URLSetting(
            "TEAMS_SERVICE_URL",
            "https://smba.trafficmanager.net/teams/",
            "/microsoft/botconnector/",
        ),
        URLSetting(
            "BOTFRAMEWORK_OPENID_URL",
            "https://login.botframework.com/v1/.well-known/openidconfiguration",
            "/microsoft/botframework/v1/.well-known/openidconfiguration",
        ),
    )
    settings = (
        Setting("MS_APP_ID", sandbox="00000000-0000-4000-8000-00000000a99b"),
        Setting("MS_CLIENT_SECRET", sandbox="sandbox-ms-client-secret"),
        # When MS_CLIENT_SECRET expires (ISO 8601, e.g. 2028-05-31): warned 14 days ahead.
        Setting("MS_CLIENT_SECRET_EXPIRES_AT"),
        Setting("TEAMS_BOT_NAME", "Wistant bot"),
        # The Teams app's manifest id: the install link, and the org-catalog lookup before
        # installing the app for members (installs.py).
        Setting("TEAMS_APP_ID", sandbox="4a6f1c3e-8b2d-4e7f-9a1b-2c3d4e5f6a7b"),
        Setting("TEAMS_SERVICE_URL_HOSTS", "smba.trafficmanager.net", "127.0.0.1,localhost"),
    )
    consent_settings = ("MS_CONSENT_URL",)
    rate_per_second = TENANT_RATE
    connection_label = _l("Tenant")
    coverage_reasons: ClassVar[Mapping[str, CoverageReason]] = {
        "bot_not_installed": CoverageReason(
            _l("Linked, but the bot is not installed for them"),
            _l("Ask them to add the bot in Teams"),
            "integrations.provider",
            anchor="teams-bot-installs",
            linked=True,
        ),
        "install_blocked": CoverageReason(
            _l("Linked, but an app permission policy keeps the app from being installed"),
            _l("Allow the app in the Teams admin center, or ask them to add it"),
            "integrations.provider",
            anchor="teams-app-install",
            linked=True,
        ),
    }
    #: Graph /users carries mail (or the userPrincipalName when there is no mailbox).
    links_by_email = True
    #: Adaptive Card ``Action.Execute``, answered as invokes at ``POST /teams/messages``.
    buttons = True

    def client(self, integration: Integration) -> TeamsClient:
        return TeamsClient(integration)

    def pacing(self, integration: Integration) -> PacingBudget:
        """One bucket per tenant under the 30 requests/s per-app limit."""
        return PacingBudget(f"teams:{integration.external_id}", TENANT_RATE, TENANT_BURST)

    def budgets(self, integration: Integration, account: ChatAccount) -> list[PacingBudget]:
        """The tenant's bucket, and the member's conversation's once there is one (the first
        DM creates it)."""
        budgets = [self.pacing(integration)]
        conversation = (account.extra or {}).get("conversation_id")
        if conversation:
            budgets.append(conversation_budget(str(conversation)))
        return budgets

    def member_sign_in(self) -> TeamsSignIn:
        """Members sign in with their work account of the connected tenant (Entra ID)."""
        return TeamsSignIn()

    def setup_steps(self) -> list[Step]:
        return setup.setup_steps()

    def unreachable_reason(self, extra: Mapping[str, Any]) -> str | None:
        """Teams lets a bot write to a member only once the app is installed for them: they
        added it (the install activity gives their Teams user id) or the portal installed it
        (Graph gives the chat); until then a link waits."""
        if extra.get("teams_user_id") or extra.get("conversation_id"):
            return None
        if (extra.get("install") or {}).get("state") == "blocked":
            return "install_blocked"
        return "bot_not_installed"

    def refreshes_tokens(self, integration: Integration) -> bool:
        """Graph and Bot Framework tokens come from client credentials, asked for again."""
        return True

    def client_secret_expires_at(self, integration: Integration) -> datetime | None:
        """Every tenant depends on our Entra app's client secret (MS_CLIENT_SECRET), which
        Entra lets live 24 months at most: MS_CLIENT_SECRET_EXPIRES_AT says when it ends."""
        raw = current_app.config.get("MS_CLIENT_SECRET_EXPIRES_AT")
        try:
            when = datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            log.warning("MS_CLIENT_SECRET_EXPIRES_AT is not an ISO 8601 date: ignored")
            return None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # a bare date or time is read as UTC
        return when

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
        return setup.build_connection(data)

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:
        """Read the tenant's directory in the background (progress on the page)."""
        start_sync(integration, actor_id)
