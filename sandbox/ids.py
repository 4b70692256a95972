"""Deterministic identifiers, so a reset sandbox always has the same ids."""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6d1c7f3e-8a4b-4e2d-9c5f-0b1a2c3d4e5f")


def short_id(prefix: str, *parts: object, length: int = 10) -> str:
    """`prefix` + upper-case hex derived from `parts` (Slack-style ids such as U0A1B2C3D4E)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return prefix + digest[:length].upper()


def guid(*parts: object) -> str:
    """A uuid5 GUID derived from `parts` (Entra object ids)."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


def number(*parts: object, digits: int = 9) -> int:
    """A stable integer with `digits` digits (Chatwork account and room ids). Nine digits, as
    Chatwork's own ids have nowadays: with seven, a 10,000-member directory (20,000 rooms)
    had a few dozen ids in common by the birthday bound, and the sandbox merged those rooms."""
    digest: int = int(hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest(), 16)
    low: int = 10 ** (digits - 1)
    return low + digest % (9 * low)
