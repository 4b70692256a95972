"""Notification channels behind one interface: a transport per channel key, and their registry.

``Delivery.channel`` holds a key of this registry: ``"email"``, or the key of a registered chat
provider (each is reached through a chat transport). A transport takes one claimed attempt and
answers with an :data:`Outcome`; it never writes the delivery row: the dispatcher records the
outcome, and only while it still holds the row's lease.

The implementations live in :mod:`.transports`, which registers them; this module imports none
of them, so the names and the interface can be used where the senders cannot (``explain``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..integrations.registry import providers
from .models import Delivery, Notification

if TYPE_CHECKING:
    from ..accounts.models import User
    from ..integrations.models import AccountLink, ChatAccount, Integration
    from ..integrations.providers.base import ChatProvider


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt of one delivery, with what the dispatcher loaded for it."""

    delivery: Delivery
    notification: Notification
    recipient: User
    #: The integration and account a chat delivery was routed to (None for other channels).
    integration: Integration | None = None
    account: ChatAccount | None = None
    #: The recipient's link in ``integration``, loaded with the rest (the DM's choices need it).
    link: AccountLink | None = None
    #: The delivery's ids as loaded: a commit during the send (a pacing reservation) expires
    #: the objects above, and reading an id from them again would cost a query.
    organization_id: int = field(init=False)
    integration_id: int | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "organization_id", self.delivery.organization_id)
        object.__setattr__(self, "integration_id", self.delivery.integration_id)


@dataclass(frozen=True)
class Sent:
    """Accepted: the delivery is ``sent``; ``account_extra`` as in ``DeliveryResult``."""

    message_id: str | None
    account_extra: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Later:
    """Not now, and not an attempt (pacing, a rate limit): try again in ``seconds``."""

    seconds: float
    code: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Retry:
    """A temporary failure: one attempt spent, retried with backoff until attempts run out."""

    code: str
    error: str


@dataclass(frozen=True)
class Failed:
    """A permanent failure: ``failed`` at once, no retry."""

    code: str
    error: str | None = None


Outcome = Sent | Later | Retry | Failed


class Transport(abc.ABC):
    """How one channel sends: e-mail, a chat provider's DM, later an outbound webhook."""

    #: What ``Delivery.channel`` stores for this channel.
    key: str
    #: The channel a delivery hands over to when it ends unsent (failed or dead), once per
    #: notification; None when there is none (e-mail is the last resort).
    fallback: str | None = None

    @abc.abstractmethod
    def name(self) -> str:
        """The channel's display name, in the current language."""

    @abc.abstractmethod
    def send(self, attempt: Attempt) -> Outcome:
        """Try to deliver ``attempt``; raise only for what no handler expected (a crash, which
        the dispatcher records as an attempt)."""

    @abc.abstractmethod
    def destination(self, delivery: Delivery, recipient: User) -> str:
        """Where a sent ``delivery`` went, as a phrase for support ("to a@example.com");
        empty when it can no longer be told (the chat account was removed since)."""

    def after_sent(self, attempt: Attempt) -> None:  # noqa: B027  (optional hook)
        """Side effects once ``sent`` is recorded (e.g. the integration's last success)."""


class TransportRegistry:
    """Every channel a delivery may use: transports registered here (e-mail, later webhooks),
    and one chat transport per provider in ``integrations.registry.providers``, made by the
    factory :meth:`register_chat` was given (so a provider registered later, a test's fake
    included, is a channel at once)."""

    def __init__(self) -> None:
        self._own: dict[str, Transport] = {}
        self._default: str | None = None
        self._chat: Callable[[ChatProvider], Transport] | None = None

    def register(self, transport: Transport, *, default: bool = False) -> Transport:
        """Add ``transport`` under its key; ``default`` marks the channel that reaches every
        member (routing's answer when nothing else does, and where notices always go)."""
        if transport.key in self._own:
            raise ValueError(f"transport {transport.key!r} registered twice")
        self._own[transport.key] = transport
        if default:
            self._default = transport.key
        return transport

    def register_chat(self, factory: Callable[[ChatProvider], Transport]) -> None:
        """How a chat provider becomes a transport."""
        self._chat = factory

    def get(self, key: str) -> Transport | None:
        if key in self._own:
            return self._own[key]
        provider = providers.get(key)
        if provider is None or self._chat is None:
            return None
        return self._chat(provider)

    def keys(self) -> list[str]:
        """Every channel key: the registered transports', then the chat providers' in order."""
        chat = [provider.key for provider in providers.all() if provider.key not in self._own]
        return [*self._own, *chat]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def default(self) -> Transport:
        if self._default is None:
            raise LookupError("no default transport registered (import portal.notifications)")
        return self._own[self._default]

    def name(self, key: str) -> str:
        """The display name of channel ``key``; the key itself if it is not registered."""
        transport = self.get(key)
        return transport.name() if transport is not None else key

    def fallback_for(self, key: str) -> str | None:
        """Where a delivery on ``key`` goes when it ends unsent: its transport's fallback; for
        a channel no longer registered (its provider removed while rows waited), the default."""
        transport = self.get(key)
        fallback = transport.fallback if transport is not None else self.default.key
        return None if fallback == key else fallback


transports = TransportRegistry()
