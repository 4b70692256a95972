"""Fixed sandbox credentials, well-known identifiers and the tunable settings.

The portal's development configuration uses exactly these credentials, so a fresh checkout can
connect all three providers against the sandbox without registering anything. They are not
secrets: they only ever open doors inside the sandbox.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# --- Slack: one app, as registered on api.slack.com -------------------------------------------
SLACK_CLIENT_ID = "1111111111.2222222222"
SLACK_CLIENT_SECRET = "sandbox-slack-client-secret"
SLACK_SIGNING_SECRET = "sandbox-slack-signing-secret"
SLACK_APP_ID = "A0SANDBOX"
# Legacy verification token carried in every Events API envelope (deprecated, still sent).
SLACK_VERIFICATION_TOKEN = "sandboxverificationtoken"
DEMO_SLACK_TEAM_ID = "T0DEMO0001"
SAMPLE_SLACK_TEAM_ID = "T0SAMPLE01"

# --- Microsoft: one multi-tenant Entra app registration; the bot uses the same app id -----------
MS_CLIENT_ID = "00000000-0000-4000-8000-00000000a99b"
MS_CLIENT_SECRET = "sandbox-ms-client-secret"
MS_BOT_APP_ID = MS_CLIENT_ID
MS_BOT_NAME = "Wistant bot"
MS_APP_NAME = "Wistant"
DEMO_TENANT_ID = "5f2d7a4e-0c1b-4e8a-9d3f-1a2b3c4d5e6f"
SAMPLE_TENANT_ID = "8a3c6e1f-2b4d-4c5e-9f7a-6b5c4d3e2f1a"
# The real botframework.com tenant; Bot Framework tokens are issued "for" it.
BOTFRAMEWORK_TENANT_ID = "d6d49420-f39b-4df7-a1dc-d59a935871db"
GRAPH_RESOURCE = "https://graph.microsoft.com"
BOTFRAMEWORK_RESOURCE = "https://api.botframework.com"
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"
#: The Teams app manifest id (``id`` in manifest.json) of the sandbox's app.
TEAMS_MANIFEST_ID = "4a6f1c3e-8b2d-4e7f-9a1b-2c3d4e5f6a7b"

# --- Rate limits: (requests, window seconds) rules per bucket, real figures by default ----------
# Keys are the bucket names the control API accepts in `rate_limit_overrides`.
RATE_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "slack:auth.test": ((600, 60),),  # "hundreds per minute"; the Java SDK uses 600
    "slack:users.list": ((20, 60),),  # Tier 2
    "slack:users.lookupByEmail": ((50, 60),),  # Tier 3
    "slack:conversations.open": ((50, 60),),  # Tier 3
    "slack:auth.revoke": ((50, 60),),  # Tier 3
    "slack:apps.uninstall": ((1, 60),),  # Tier 1
    "slack:oauth.v2.access": ((100, 60),),  # Tier 4 per the Java SDK
    # chat.postMessage: ~1 per second per channel, short bursts allowed ...
    "slack:chat.postMessage": ((5, 1), (60, 60)),
    # ... and a workspace-wide cap of "several hundred per minute".
    "slack:chat.postMessage:workspace": ((400, 60),),
    "chatwork:api": ((300, 300),),  # per token, fixed 5-minute window
    # Graph throttling depends on request cost; this is an approximation per tenant.
    "microsoft:graph": ((3000, 10),),
    # Teams: per bot per conversation (thread) ...
    "microsoft:botconnector:conversation": ((7, 1), (8, 2), (60, 30), (1800, 3600)),
    # ... and per app per tenant (30 RPS in the msteams-docs copy of the page).
    "microsoft:botconnector:tenant": ((30, 1),),
    # Graph installedApps, per app per tenant (msteams-docs throttling-limits.md).
    "microsoft:installedApps:post": ((30, 1),),
    "microsoft:installedApps:get": ((60, 1),),
    # Outlook resources (mailboxSettings), per app per mailbox (throttling-limits.md).
    "microsoft:mailbox": ((10000, 600),),
}


@dataclass
class Settings:
    """Everything the control API may change at run time; `reset` restores the start values."""

    portal_url: str = "http://127.0.0.1:5000"
    instance_dir: str = "instance"
    # Absolute base URLs, filled in once the servers are bound (used where no request exists).
    http_url: str = "http://127.0.0.1:5001"
    https_url: str = "https://127.0.0.1:5443"
    latency_ms: int = 0
    latency_overrides: dict[str, int] = field(default_factory=dict)
    rate_limits_enabled: bool = True
    rate_limit_scale: float = 1.0  # multiplies every request count (0.1 = ten times tighter)
    rate_window_scale: float = 1.0  # multiplies every window (0.01 = windows 100x shorter)
    rate_limit_overrides: dict[str, list[list[float]]] = field(default_factory=dict)
    slack_token_rotation: bool = False
    slack_access_ttl: int = 43200
    slack_code_ttl: int = 600
    chatwork_access_ttl: int = 1800
    chatwork_refresh_ttl: int = 14 * 24 * 3600
    chatwork_code_ttl: int = 60
    chatwork_rotate_refresh_tokens: bool = False
    microsoft_token_ttl: int = 3599
    botframework_token_ttl: int = 3600
    channel_token_ttl: int = 300
    post_to_portal: bool = True  # events and activities are sent to the portal when True
    # Whether the admin consent granted TeamsAppInstallation.ReadWriteSelfForUser.All.
    teams_install_permission: bool = True
    # Whether it granted MailboxSettings.Read (members' time zones in their mailbox settings).
    mailbox_settings_permission: bool = True

    def graph_roles(self) -> list[str]:
        """The application permissions the admin consent granted (the Graph token's roles)."""
        granted = {
            "TeamsAppInstallation.ReadWriteSelfForUser.All": self.teams_install_permission,
            "MailboxSettings.Read": self.mailbox_settings_permission,
        }
        return ["User.Read.All"] + [name for name, given in granted.items() if given]

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update; unknown keys or wrong types raise ValueError."""
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool) != isinstance(value, bool):
                raise ValueError(f"setting {key!r} expects {type(current).__name__}")
            if isinstance(current, int | float) and not isinstance(value, int | float):
                raise ValueError(f"setting {key!r} expects a number")
            if isinstance(current, str | dict) and not isinstance(value, type(current)):
                raise ValueError(f"setting {key!r} expects {type(current).__name__}")
            if key in ("http_url", "https_url", "portal_url"):
                value = value.rstrip("/")
            setattr(self, key, copy.deepcopy(value))

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy."""
        return asdict(self)

    def rate_rules(self, bucket: str) -> list[tuple[int, float]]:
        """Return the effective (limit, window) rules of a bucket, scaled; [] when disabled."""
        if not self.rate_limits_enabled:
            return []
        raw = self.rate_limit_overrides.get(bucket) or RATE_LIMITS.get(bucket, ())
        return [
            (max(1, round(limit * self.rate_limit_scale)), window * self.rate_window_scale)
            for limit, window in raw
        ]

    def latency_for(self, operation: str) -> float:
        """Return the delay in seconds for an operation (longest matching override wins)."""
        matches = [k for k in self.latency_overrides if operation.startswith(k)]
        if matches:
            return self.latency_overrides[max(matches, key=len)] / 1000
        return self.latency_ms / 1000
