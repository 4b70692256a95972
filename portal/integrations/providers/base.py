"""The one interface every chat provider implements, and the errors it may raise.

A provider is a descriptor class (how to connect the service, what it is called) whose
``client(integration)`` returns the installed-side behaviour. The delivery pipeline only ever
talks to :class:`ChatClient`; it never imports a provider module.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from ..models import ChatAccount, Integration


@dataclass(frozen=True)
class Message:
    """A provider-neutral notification; each provider renders it in its own markup."""

    title: str
    body: str
    url: str | None = None
    locale: str = "ja"


@dataclass(frozen=True)
class DeliveryResult:
    """What the provider said after accepting a message."""

    provider_message_id: str | None


@dataclass(frozen=True)
class DirectoryEntry:
    """A person from the provider's directory, before it is stored as a ChatAccount."""

    external_id: str
    name: str
    email: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class ProviderError(Exception):
    """Base of every provider failure. ``code`` is the provider's own error name."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__


class ProviderAuthError(ProviderError):
    """The stored credentials are dead (revoked, uninstalled): reconnect required."""


class RecipientNotFound(ProviderError):
    """This chat account is gone, deactivated or blocks the app: flag the link."""


class ProviderRateLimited(ProviderError):
    """HTTP 429. ``retry_after`` (seconds, when given) is the floor for the next attempt."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code or "ratelimited")
        self.retry_after = retry_after


class TemporaryProviderError(ProviderError):
    """5xx, timeouts, connection errors: retry with backoff."""

    retryable = True


class ChatClient(Protocol):
    """The installed side of a provider: what the worker and the linking screens call."""

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult: ...


class ChatProvider(abc.ABC):
    """Describes one chat service. Subclasses are registered in ``providers/__init__.py``."""

    #: Slug everything is keyed on: URLs, templates, audit data, logger names.
    key: ClassVar[str]
    #: Display name, as in the vendor's help page.
    name: ClassVar[str]
    #: Ask requests per second we allow ourselves per workspace/token (pacing budget).
    rate_per_second: ClassVar[float] = 1.0

    @abc.abstractmethod
    def client(self, integration: Integration) -> ChatClient:
        """Return a client that acts with ``integration``'s credentials."""
