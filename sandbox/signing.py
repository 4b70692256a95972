"""RSA keys that sign the sandbox's JWTs, and their JWKS.

Three keys, as with the real services: one stands in for Entra ID (Graph and Bot Framework
access tokens the portal *receives from the token endpoint*), one for the Bot Framework channel
(tokens on activities the sandbox *sends to the portal*). The channel key is endorsed for
`msteams` so the portal can check endorsements as the Bot Framework SDK does. The third
signs Sign in with Slack's id_tokens.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class SigningKey:
    """One RSA key pair with its `kid` and optional Bot Framework endorsements."""

    private_key: rsa.RSAPrivateKey
    kid: str
    endorsements: list[str] = field(default_factory=list)

    @classmethod
    def generate(cls, label: str, endorsements: list[str] | None = None) -> SigningKey:
        """Make a fresh 2048-bit key; the kid mixes the label with the key's fingerprint."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
        kid = f"{label}-{hashlib.sha256(modulus).hexdigest()[:16]}"
        return cls(key, kid, endorsements or [])

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with `endorsements` when it has some."""
        data: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        data.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        if self.endorsements:
            data["endorsements"] = list(self.endorsements)
        return data

    def sign(self, claims: dict[str, Any]) -> str:
        """Return an RS256 JWT carrying `claims` and this key's kid."""
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """Decode a token this key signed; raises jwt.InvalidTokenError when it does not hold."""
        claims: dict[str, Any] = jwt.decode(
            token, self.private_key.public_key(), algorithms=["RS256"], audience=audience
        )
        return claims


@dataclass
class SigningKeys:
    """The sandbox's two signing keys."""

    identity: SigningKey
    channel: SigningKey
    #: Sign in with Slack's id_tokens.
    slack: SigningKey

    @classmethod
    def generate(cls) -> SigningKeys:
        """Create the keys (about 0.1 s each)."""
        return cls(
            identity=SigningKey.generate("sbx-entra"),
            channel=SigningKey.generate("sbx-botframework", ["msteams", "emulator"]),
            slack=SigningKey.generate("sbx-slack"),
        )


def base_claims(lifetime: int, now: float | None = None) -> dict[str, Any]:
    """iat/nbf/exp plus a unique id, the part every issued JWT shares."""
    issued = int(time.time() if now is None else now)
    return {"iat": issued, "nbf": issued, "exp": issued + lifetime, "uti": uuid.uuid4().hex}
