"""The fourth provider's installed side: its DMs and directory, against the fake service."""

from __future__ import annotations

from collections.abc import Iterator

from portal.integrations.models import ChatAccount, Integration
from portal.integrations.providers.base import (
    DeliveryResult,
    DirectoryEntry,
    Message,
    ProviderAuthError,
    ProviderError,
    RecipientNotFound,
    stored_secrets,
)

from .service import SERVICE, Refused

PAGE_SIZE = 3


def render_message(message: Message) -> str:
    """The service's plain-text markup: title, body, link."""
    return "\n".join(part for part in (message.title, message.body, message.url) if part)


def translate(problem: Refused) -> ProviderError:
    """The service's error names mapped onto the ProviderError tree."""
    if problem.code == "invalid_token":
        return ProviderAuthError("the service refused the token", code=problem.code)
    if problem.code in ("user_not_found", "guest_refuses_dm"):
        return RecipientNotFound("the service cannot reach this person", code=problem.code)
    return ProviderError("the service refused the call", code=problem.code)


class FourthClient:
    """One workspace's token."""

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def _token(self) -> str:
        return str(stored_secrets(self.integration)["access_token"])

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        try:
            message_id = SERVICE.send(self._token(), account.external_id, render_message(message))
        except Refused as problem:
            raise translate(problem) from None
        return DeliveryResult(provider_message_id=message_id)

    def iter_directory(self) -> Iterator[list[DirectoryEntry]]:
        page = 0
        while True:
            try:
                people, more = SERVICE.directory(self._token(), page, PAGE_SIZE)
            except Refused as problem:
                raise translate(problem) from None
            yield [
                DirectoryEntry(p.user_id, p.name, p.email, {"guest": p.guest})
                for p in people
                if p.active
            ]
            if not more:
                return
            page += 1

    def revoke(self) -> None:
        SERVICE.revoke(self._token())
