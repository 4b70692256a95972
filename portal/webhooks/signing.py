"""Standard Webhooks signatures, made by the ``standardwebhooks`` package (no HMAC of ours).

A secret is ``whsec_`` + base64 of 24 random bytes. While a secret is being rotated both the
new and the old one sign, space-separated in one ``webhook-signature`` header, as the spec
says, so a receiver that still knows only the old secret keeps verifying until it switches.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def headers(
    signing_secrets: Sequence[str], message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """The three headers of one attempt: ``webhook-id`` (the same on every retry: the
    receiver's idempotency key), ``webhook-timestamp`` (seconds) and ``webhook-signature``
    with one ``v1,…`` per secret (newest first)."""
    if not signing_secrets:
        raise ValueError("an endpoint always has a secret")
    signatures = [Webhook(secret).sign(message_id, timestamp, body) for secret in signing_secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
