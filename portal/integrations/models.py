"""Connected chat tools, their directories, member links and the wizard/OAuth state."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..crypto import EncryptedJSON, SecretUnavailable, seal, unseal
from ..database import UTCDateTime, string_enum, utcnow
from ..extensions import db


def _member_and_integration() -> tuple[ForeignKeyConstraint, ForeignKeyConstraint]:
    """A row about one member in one integration: both of the same organization."""
    return (
        ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            ondelete="CASCADE",
        ),
    )


class IntegrationState(enum.StrEnum):
    NOT_CONNECTED = "not_connected"  # 未連携
    CONFIGURING = "configuring"  # 設定中
    CONNECTED = "connected"  # 連携中
    NEEDS_RECONNECT = "needs_reconnect"  # エラー: token revoked, secret unreadable, …
    DISCONNECTED = "disconnected"  # 未連携 again, history kept


class LinkMethod(enum.StrEnum):
    EMAIL = "email"
    MANUAL = "manual"
    SUGGESTION = "suggestion"
    BOT_INSTALL = "bot_install"
    CSV = "csv"
    #: The member signed in at the provider themselves (/me/accounts): confirmed by nature.
    SELF = "self"


class Integration(db.Model):  # type: ignore[name-defined]
    """One organization's connection to one provider (at most one per provider)."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("organization_id", "provider", name="uq_integrations_org_provider"),
        UniqueConstraint("id", "organization_id", name="uq_integrations_id_organization"),
        Index("ix_integrations_provider_external", "provider", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    #: Provider key: "slack", "chatwork", "teams".
    provider: Mapped[str] = mapped_column(String(16))
    state: Mapped[IntegrationState] = mapped_column(
        string_enum(IntegrationState, 24), default=IntegrationState.NOT_CONNECTED
    )
    #: Slack team id, Chatwork account id, Entra tenant id.
    external_id: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    #: Non-secret settings: chosen channel, Chatwork client id, bot name, granted scopes…
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Client secret, access and refresh tokens; sealed to this row (see crypto.seal).
    secrets: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped with every stored token pair, so concurrent refreshers can compare-and-swap.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def _owner(self) -> str:
        return f"integration:{self.id}:org:{self.organization_id}:{self.provider}"

    def set_secrets(self, values: dict[str, Any]) -> None:
        """Store ``values`` encrypted and bound to this integration (flush first for an id)."""
        self.secrets = seal(values, self._owner)

    def get_secrets(self) -> dict[str, Any]:
        """Decrypt the secrets; raises :class:`SecretUnavailable` (fail closed) when it cannot."""
        if self.secrets is None:
            return {}
        value = unseal(self.secrets, self._owner)
        if not isinstance(value, dict):
            raise SecretUnavailable("unexpected secret shape")
        return value


class ChatAccount(db.Model):  # type: ignore[name-defined]
    """A person in the provider's directory (Slack user, Chatwork contact, Entra user)."""

    __tablename__ = "chat_accounts"
    __table_args__ = (
        UniqueConstraint("integration_id", "external_id", name="uq_chat_accounts_external"),
        # Target of AccountLink's composite key: the linked account is in the link's integration.
        UniqueConstraint("id", "integration_id", name="uq_chat_accounts_id_integration"),
        ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            ondelete="CASCADE",
        ),
        Index("ix_chat_accounts_integration_email", "integration_id", "email"),
        Index("ix_chat_accounts_integration_name", "integration_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    #: Lower-cased e-mail when the provider gives one (Slack, Graph); never for Chatwork.
    email: Mapped[str | None] = mapped_column(String(254))
    #: Provider extras: Chatwork DM room id, Teams conversation reference, department…
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountLink(db.Model):  # type: ignore[name-defined]
    """A member ↔ chat account link: unique both ways within an integration."""

    __tablename__ = "account_links"
    __table_args__ = (
        UniqueConstraint("integration_id", "user_id", name="uq_account_links_member"),
        UniqueConstraint("integration_id", "chat_account_id", name="uq_account_links_account"),
        # The member is in the link's organization…
        ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
        # …the integration too…
        ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            ondelete="CASCADE",
        ),
        # …and the chat account is in that integration's directory.
        ForeignKeyConstraint(
            ["chat_account_id", "integration_id"],
            ["chat_accounts.id", "chat_accounts.integration_id"],
            ondelete="CASCADE",
        ),
        Index("ix_account_links_user", "user_id"),
        Index("ix_account_links_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    chat_account_id: Mapped[int] = mapped_column(Integer)
    method: Mapped[LinkMethod] = mapped_column(string_enum(LinkMethod, 24))
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the member confirmed an automatic match ("this is me").
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when the provider says the account is gone or DMs are blocked.
    flagged_reason: Mapped[str | None] = mapped_column(String(200))
    #: The e-mail auto-link batch that made this link, so undoing the batch finds exactly it;
    #: a relink by hand is a new row without one (migration 0009).
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("link_batches.id", ondelete="SET NULL"))

    chat_account: Mapped[ChatAccount] = relationship(
        foreign_keys=[chat_account_id],
        primaryjoin="AccountLink.chat_account_id == ChatAccount.id",
        viewonly=True,
    )

    @staticmethod
    def pairs(integration_id: int) -> list[tuple[int, int]]:
        """Every (member id, chat account id) linked in the integration, in one query: what
        the matchers (e-mail, Chatwork names) compare against."""
        return list(
            db.session.execute(
                select(AccountLink.user_id, AccountLink.chat_account_id).where(
                    AccountLink.integration_id == integration_id
                )
            ).tuples()
        )


class SetupSession(db.Model):  # type: ignore[name-defined]
    """Server-side state of one wizard run / OAuth round trip.

    The OAuth ``state`` sent to the provider is a random value whose SHA-256 is the key here; it is
    bound to the browser session that started it, to the organization and to the provider, lives
    ten minutes and is consumed on first use. PKCE verifiers and collected data are encrypted.
    """

    __tablename__ = "setup_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "organization_id"],
            ["users.id", "users.organization_id"],
            ondelete="CASCADE",
        ),
    )

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer, index=True)
    user_id: Mapped[int] = mapped_column(Integer)
    #: Hash of the server-side browser session that started the flow.
    browser_session: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    #: Hash of the provider's step list: a deploy that changes the steps restarts the wizard.
    signature: Mapped[str] = mapped_column(String(64))
    data: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Last error shown to the admin (e.g. "キャンセルされました"), never a secret.
    error: Mapped[str | None] = mapped_column(Text)


class SignInSession(db.Model):  # type: ignore[name-defined]
    """One member's "Connect my account" round trip through the provider's user sign-in.

    Like :class:`SetupSession`: keyed by the SHA-256 of the ``state`` sent to the provider,
    bound to the browser session, the member, the organization and the provider, ten minutes
    to live, consumed on first use. ``data`` (encrypted) holds the id_token ``nonce``.
    """

    __tablename__ = "sign_in_sessions"
    __table_args__ = (
        *_member_and_integration(),
        Index("ix_sign_in_sessions_user", "user_id"),
    )

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    browser_session: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SyncState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BackgroundRun:
    """What every background run of an integration's long work keeps: the row its page polls.

    The task updates it as it goes, so the admin sees progress, and a run a killed worker left
    behind is visible (it stays "running" with an old ``updated_at``).
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[SyncState] = mapped_column(string_enum(SyncState, 24), default=SyncState.QUEUED)
    #: Why the run failed (a short code the page explains).
    error: Mapped[str | None] = mapped_column(String(500))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        """Still queued or running: the page keeps polling."""
        return self.state in (SyncState.QUEUED, SyncState.RUNNING)


def _run_table_args(name: str) -> tuple[Any, ...]:
    """A run belongs to an integration of its organization; listed newest first per one."""
    return (
        ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            ondelete="CASCADE",
        ),
        Index(f"ix_{name}_integration", "integration_id", "id"),
    )


class DirectorySync(BackgroundRun, db.Model):  # type: ignore[name-defined]
    """One run of a provider directory sync, updated page by page."""

    __tablename__ = "directory_syncs"
    __table_args__ = _run_table_args("directory_syncs")

    #: Provider pages read, people kept (bots, deleted users and invitees are skipped)…
    pages: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    #: …accounts that left the directory since the last run, and links made automatically.
    deactivated: Mapped[int] = mapped_column(Integer, default=0)
    auto_linked: Mapped[int] = mapped_column(Integer, default=0)


class LinkBatch(db.Model):  # type: ignore[name-defined]
    """One bulk e-mail auto-link: after a directory sync (automatic) or the admin's button.

    Its links carry its id, so "undo" removes exactly the links it made that are still as it
    made them; ``undone_at`` records the undo, which is done at most once (migration 0009).
    """

    __tablename__ = "link_batches"
    __table_args__ = (
        ForeignKeyConstraint(
            ["integration_id", "organization_id"],
            ["integrations.id", "integrations.organization_id"],
            ondelete="CASCADE",
        ),
        Index("ix_link_batches_integration", "integration_id", "automatic", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    #: True when a directory sync linked without anyone pressing a button.
    automatic: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_id: Mapped[int | None] = mapped_column(
        ForeignKey("directory_syncs.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Links made; and, once undone, when, by whom and how many were still as made.
    linked: Mapped[int] = mapped_column(Integer, default=0)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone: Mapped[int] = mapped_column(Integer, default=0)


class InboundEvent(db.Model):  # type: ignore[name-defined]
    """An inbound provider event already handled (Slack ``event_id``): retries are dropped."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_inbound_events_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AppInstallRun(BackgroundRun, db.Model):  # type: ignore[name-defined]
    """One run of installing the chat app for linked members (Teams' proactive install),
    with the tally by outcome."""

    __tablename__ = "app_install_runs"
    __table_args__ = _run_table_args("app_install_runs")

    #: Members to install for, and how many are done…
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    #: …by outcome: installed now, had it already, blocked by a policy, failed otherwise.
    installed: Mapped[int] = mapped_column(Integer, default=0)
    already: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    #: Answers of 429 met (and waited out) on the way.
    throttled: Mapped[int] = mapped_column(Integer, default=0)


class InvitationState(enum.StrEnum):
    QUEUED = "queued"  # written, the e-mail not sent yet
    SENT = "sent"
    BOUNCED = "bounced"  # the mail server refused it
    LINKED = "linked"  # the member linked themselves from it


class Invitation(db.Model):  # type: ignore[name-defined]
    """An invitation to an unlinked member to link their own account in one tool.

    The e-mailed link carries a random token; only its SHA-256 is stored. It links once, for
    48 hours, and only for the member it was sent to, once signed in (``me/invitations.py``).
    """

    __tablename__ = "invitations"
    __table_args__ = (
        *_member_and_integration(),
        Index("ix_invitations_integration", "integration_id", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[InvitationState] = mapped_column(
        string_enum(InvitationState, 24), default=InvitationState.QUEUED
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the member first chose to link from it; the link itself spends it (``LINKED``).
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The token itself, sealed to this row, only until its e-mail is sent: the background job
    #: reads it here, so the task queue carries ids, never a working link (migration 0016).
    token_sealed: Mapped[Any] = mapped_column(EncryptedJSON, nullable=True)

    @property
    def owner(self) -> str:
        return f"invitation:{self.id}:org:{self.organization_id}"

    def expired(self, now: datetime) -> bool:
        return self.state is not InvitationState.LINKED and self.expires_at <= now
