"""Secrets at rest: an encrypted column type on MultiFernet, and key rotation.

Keys come from ``PORTAL_ENCRYPTION_KEYS`` (comma-separated, newest first), never from
``SECRET_KEY``. A stored value reads ``enc:fernet:<key id>:<token>``: the key id tells which key
wrote it, so rotation progress can be counted and an old key is never dropped while in use.

Fernet has no associated data, so a ciphertext copied into another row would decrypt. Callers
that hold per-organization secrets bind them with :func:`seal` / :func:`unseal`, which put the
owner inside the encrypted payload and check it on the way out (reliability.md SE-03).
A value that fails to decrypt raises :class:`SecretUnavailable`; there is no plaintext fallback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

PREFIX = "enc:fernet:"


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with any configured key, or is bound elsewhere."""


class KeyConfigError(RuntimeError):
    """``PORTAL_ENCRYPTION_KEYS`` is missing or malformed: the process must not start."""


def key_id(key: bytes) -> str:
    """A short, non-secret fingerprint of a Fernet key."""
    return hashlib.sha256(b"chat-connect-key-id:" + key).hexdigest()[:8]


class Keyring:
    """The configured Fernet keys; the first one encrypts, all of them decrypt."""

    def __init__(self, keys: Iterable[str]) -> None:
        raw = [k.strip().encode() for k in keys if k.strip()]
        if not raw:
            raise KeyConfigError("PORTAL_ENCRYPTION_KEYS is empty")
        self.fernets: dict[str, Fernet] = {}
        for key in raw:
            try:
                if len(base64.urlsafe_b64decode(key)) != 32:
                    raise ValueError
                self.fernets[key_id(key)] = Fernet(key)
            except (ValueError, binascii.Error) as exc:
                # Never echo the key itself in the message.
                raise KeyConfigError(
                    "PORTAL_ENCRYPTION_KEYS holds a value that is not a 32-byte url-safe "
                    "base64 Fernet key"
                ) from exc
        self.primary_id = key_id(raw[0])
        self.multi = MultiFernet(list(self.fernets.values()))

    def encrypt(self, plaintext: str) -> str:
        token = self.fernets[self.primary_id].encrypt(plaintext.encode("utf-8"))
        return f"{PREFIX}{self.primary_id}:{token.decode('ascii')}"

    def decrypt(self, stored: str) -> str:
        kid, token = _split(stored)
        fernet = self.fernets.get(kid)
        try:
            if fernet is None:
                raise InvalidToken
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnavailable(f"cannot decrypt a value written with key {kid}") from exc

    def rotate(self, stored: str) -> str:
        """Re-encrypt ``stored`` under the primary key (idempotent for current values)."""
        kid, _ = _split(stored)
        if kid == self.primary_id:
            return stored
        return self.encrypt(self.decrypt(stored))


def _split(stored: str) -> tuple[str, str]:
    if not stored.startswith(PREFIX):
        # A plaintext value in an encrypted column is treated as corrupt, never as a secret.
        raise SecretUnavailable("value is not encrypted")
    kid, _, token = stored[len(PREFIX) :].partition(":")
    return kid, token


def init_app(app: Flask) -> None:
    """Build the keyring at start-up, so a bad key stops the process instead of a request."""
    app.extensions["keyring"] = Keyring((app.config.get("PORTAL_ENCRYPTION_KEYS") or "").split(","))


def keyring() -> Keyring:
    return current_app.extensions["keyring"]  # type: ignore[no-any-return]


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored encrypted. Decryption happens on attribute load, lazily per row."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, StoredSecret):  # loaded and saved again unchanged
            return value.stored
        return keyring().encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return StoredSecret(value)


class StoredSecret:
    """An encrypted value as loaded: decrypted only when asked, so a bad value fails closed
    at the point of use (the integration shows "reconnect required") instead of breaking every
    page that lists the row."""

    __slots__ = ("stored",)

    def __init__(self, stored: str) -> None:
        self.stored = stored

    def reveal(self) -> Any:
        return json.loads(keyring().decrypt(self.stored))

    def __repr__(self) -> str:  # never show the ciphertext or plaintext in logs
        return "<StoredSecret>"


def seal(value: Any, owner: str) -> dict[str, Any]:
    """Wrap ``value`` with its owner (e.g. ``"integration:12:org:3"``) before encryption."""
    return {"owner": owner, "value": value}


def unseal(stored: Any, owner: str) -> Any:
    """Decrypt a sealed value and check it belongs to ``owner``; raise otherwise."""
    if stored is None:
        return None
    payload = stored.reveal() if isinstance(stored, StoredSecret) else stored
    if not isinstance(payload, dict) or payload.get("owner") != owner:
        raise SecretUnavailable("secret is bound to another owner")
    return payload["value"]


def iter_encrypted_columns() -> Iterator[tuple[Any, str]]:
    """Every (model, attribute) stored with :class:`EncryptedJSON`, for ``flask rotate-keys``."""
    from .extensions import db

    for mapper in db.Model.registry.mappers:  # type: ignore[attr-defined]
        for column in mapper.columns:
            if isinstance(column.type, EncryptedJSON):
                yield mapper.class_, column.key
