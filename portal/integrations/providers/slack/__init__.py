"""Slack: "Add to Slack" (OAuth v2), the workspace directory, DMs and uninstall events.

App setup at api.slack.com/apps (one app for the whole service):
- OAuth & Permissions → Redirect URLs: exactly ``PUBLIC_BASE_URL + /slack/oauth/callback``
  (the install) and ``PUBLIC_BASE_URL + /me/accounts/slack/callback`` (Sign in with Slack,
  user scopes ``openid email profile``, for members linking themselves).
- Bot token scopes: ``users:read``, ``users:read.email`` (e-mail matching), ``im:write`` and
  ``chat:write`` (DMs), ``incoming-webhook`` — only so Slack shows the channel picker of the
  vendor's step 2; nothing is ever posted to that channel.
- Event Subscriptions → Request URL ``PUBLIC_BASE_URL + /slack/events``; bot events
  ``app_uninstalled`` and ``tokens_revoked``. Token Rotation may be on (refreshed 2 h early).
- Interactivity → Request URL ``PUBLIC_BASE_URL + /slack/interactions`` (the DM's buttons).
- Manage Distribution → public distribution, so customers' workspaces can install it.
Settings: SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET, SLACK_API_URL,
SLACK_AUTHORIZE_URL, SLACK_OPENID_AUTHORIZE_URL, SLACK_OPENID_KEYS_URL (and
PROVIDER_CA_BUNDLE for the sandbox only).

The package: ``client.py`` (Web API, Block Kit), ``setup.py`` (the wizard), ``inbound.py``
(Events API handling), ``sign_in.py`` (Sign in with Slack), ``views.py``
(``POST /slack/events``), ``templates/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from ...directory import start_sync
from ...models import ChatAccount, Integration
from ...registry import providers
from ...wizard import Step
from ..base import ChatProvider, ConnectionData, PacingBudget, Setting, URLSetting
from . import setup, views  # noqa: F401  (views: registers POST /slack/events)
from .client import SlackClient
from .sign_in import SlackSignIn


@providers.register
class SlackProvider(ChatProvider):
    """Slack workspaces: install with "Add to Slack", DM each linked member."""

    key = "slack"
    name = "Slack"
    order = 10
    url_settings = (
        URLSetting(
            "SLACK_AUTHORIZE_URL",
            "https://slack.com/oauth/v2/authorize",
            "/slack/oauth/v2/authorize",
            browser=True,
        ),
        URLSetting("SLACK_API_URL", "https://slack.com/api/", "/slack/api/"),
        # Sign in with Slack, for members linking their own account.
        URLSetting(
            "SLACK_OPENID_AUTHORIZE_URL",
            "https://slack.com/openid/connect/authorize",
            "/slack/openid/connect/authorize",
            browser=True,
        ),
        URLSetting(
            "SLACK_OPENID_KEYS_URL",
            "https://slack.com/openid/connect/keys",
            "/slack/openid/connect/keys",
        ),
        # Where a button press's response_url may point: the DM is updated only there.
        URLSetting("SLACK_RESPONSE_URL", "https://hooks.slack.com/", "/slack/hooks/"),
    )
    settings = (
        Setting("SLACK_CLIENT_ID", sandbox="1111111111.2222222222"),
        Setting("SLACK_CLIENT_SECRET", sandbox="sandbox-slack-client-secret"),
        Setting("SLACK_SIGNING_SECRET", sandbox="sandbox-slack-signing-secret"),
    )
    consent_settings = ("SLACK_AUTHORIZE_URL", "SLACK_OPENID_AUTHORIZE_URL")
    #: chat.postMessage: "1 per second per channel, short bursts allowed" (a bucket per DM) and a
    #: workspace cap of "several hundred per minute", a figure Slack does not give: the workspace
    #: budget is learned (``notifications/ceiling.py``), starting from the per-channel rate.
    rate_per_second = 1.0
    burst = 5
    workspace_window = 60.0
    #: users.list carries each profile's e-mail (users:read.email).
    links_by_email = True
    #: Block Kit buttons, answered at ``POST /slack/interactions``.
    buttons = True

    def client(self, integration: Integration) -> SlackClient:
        """The workspace's bot client."""
        return SlackClient(integration)

    def pacing(self, integration: Integration) -> PacingBudget:
        """The workspace's learned budget: from 1 message a second up to its ceiling per minute."""
        return PacingBudget(
            f"slack:{integration.external_id}",
            self.rate_per_second,
            self.burst,
            window=self.workspace_window,
        )

    def budgets(self, integration: Integration, account: ChatAccount) -> list[PacingBudget]:
        """The workspace's budget and the member's DM channel's (1 a second, bursts of 5; kept in
        the worker process, see :class:`PacingBudget`)."""
        channel = PacingBudget(
            f"slack:{integration.external_id}:{account.external_id}",
            self.rate_per_second,
            self.burst,
            shared=False,
        )
        return [self.pacing(integration), channel]

    def refreshes_tokens(self, integration: Integration) -> bool:
        """With token rotation the 12-hour bot token is refreshed before it expires."""
        return bool((integration.config or {}).get("rotation"))

    def flagged_text(self, reason: str) -> str:
        return str(_("Slack could not reach this account (%(reason)s).", reason=reason))

    def member_sign_in(self) -> SlackSignIn:
        """Sign in with Slack (OpenID Connect): members link their own account."""
        return SlackSignIn()

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
        """Read the workspace directory in the background (progress on the page)."""
        start_sync(integration, actor_id)
