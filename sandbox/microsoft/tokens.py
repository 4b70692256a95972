"""Validation of the access tokens the sandbox issued, for Graph and the Bot Connector."""

from __future__ import annotations

import jwt

from sandbox.state import IssuedToken, SandboxState


class TokenRejected(Exception):
    """The bearer token is missing, invalid, expired, revoked or for another audience."""


def check_bearer(state: SandboxState, value: str | None, audience: str) -> IssuedToken:
    """Return the token record if `value` is a live sandbox token for `audience`."""
    if not value:
        raise TokenRejected("Access token is empty.")
    try:
        state.keys.identity.verify(value, audience=audience)
    except jwt.ExpiredSignatureError as error:
        raise TokenRejected("Lifetime validation failed, the token is expired.") from error
    except jwt.InvalidTokenError as error:
        raise TokenRejected("Access token validation failure. Invalid audience.") from error
    record = state.find_token(value)
    if record is None or record.status() != "active":
        raise TokenRejected("Access token has been revoked.")
    return record
