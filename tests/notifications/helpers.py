"""Helpers for the delivery pipeline tests: a scripted chat provider and an API caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portal.integrations.models import ChatAccount, Integration
from portal.integrations.providers.base import (
    ChatProvider,
    DeliveryResult,
    Message,
    PacingBudget,
)

FAKE_KEY = "fake"  # its own provider key, so its own channel: registered for the test only


@dataclass
class ScriptedProvider(ChatProvider):
    """A chat provider whose answers the test scripts: each call pops the next outcome.

    An outcome is None (accept) or an exception instance to raise. ``sent`` records
    (external id, title) per accepted call; ``calls`` counts every attempt.
    """

    outcomes: list[BaseException | None] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    rate: float = 1000.0
    burst: int = 1000
    on_send: Callable[[], None] | None = None

    key = FAKE_KEY  # type: ignore[misc]
    name = "Fake"  # type: ignore[misc]

    def client(self, integration: Integration) -> Any:
        return self

    def pacing(self, integration: Integration) -> PacingBudget:
        return PacingBudget(f"{self.key}:{integration.external_id}", self.rate, self.burst)

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        self.calls += 1
        if self.on_send:
            self.on_send()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append((account.external_id, message.title))
        return DeliveryResult(provider_message_id=f"msg-{self.calls}")


def post_notification(client: Any, key: str, **payload: Any) -> Any:
    payload.setdefault("title", "1on1のリマインド")
    payload.setdefault("body", "明日 10:00 から 1on1 です。")
    return client.post(
        "/api/v1/notifications", json=payload, headers={"Authorization": f"Bearer {key}"}
    )
