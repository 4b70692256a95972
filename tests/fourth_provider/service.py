"""An in-process stand-in for the fourth chat service ("Fourth"): OAuth codes and tokens, a
directory of people, and the direct messages it received. No HTTP: the client calls it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class Person:
    user_id: str
    name: str
    email: str | None
    active: bool = True
    #: Guests are in the directory but the service refuses them DMs.
    guest: bool = False


class Refused(Exception):
    """The service said no; ``code`` is its error name."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class FakeService:
    """One workspace of the fake service, reset for every test."""

    workspace_id: str = "W0FOURTH"
    workspace_name: str = "Fourth デモ"
    people: list[Person] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    inbox: list[tuple[str, str]] = field(default_factory=list)
    #: Set by a test: the next token exchange fails with this code.
    refuse_exchange: str | None = None

    def consent(self, redirect_uri: str) -> str:
        """The admin allows the app: a one-time code for ``redirect_uri``."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = redirect_uri
        return code

    def exchange(self, code: str, redirect_uri: str) -> dict[str, str]:
        if self.refuse_exchange:
            raise Refused(self.refuse_exchange)
        if self.codes.pop(code, None) != redirect_uri:
            raise Refused("invalid_grant")
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return {
            "access_token": token,
            "workspace_id": self.workspace_id,
            "workspace_name": self.workspace_name,
        }

    def check(self, token: str) -> None:
        if token not in self.tokens:
            raise Refused("invalid_token")

    def directory(self, token: str, page: int, size: int) -> tuple[list[Person], bool]:
        """One page of people, and whether another follows."""
        self.check(token)
        chunk = self.people[page * size : (page + 1) * size]
        return chunk, (page + 1) * size < len(self.people)

    def send(self, token: str, user_id: str, text: str) -> str:
        self.check(token)
        person = next((p for p in self.people if p.user_id == user_id), None)
        if person is None or not person.active:
            raise Refused("user_not_found")
        if person.guest:
            raise Refused("guest_refuses_dm")
        self.inbox.append((user_id, text))
        return f"m{len(self.inbox)}"

    def revoke(self, token: str) -> None:
        self.tokens.discard(token)


#: The service every fourth-provider client talks to (the tests' fixture resets it).
SERVICE = FakeService()
