"""OAuth client registration rules, shared by the registration page and the control API."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from sandbox.chatwork.models import SCOPES, ChatworkData, OAuthClient
from sandbox.pages import LOOPBACK_HOSTS

MAX_REDIRECT_URIS = 5


class RegistrationError(ValueError):
    """A registration the Chatwork screen would refuse; the message is shown to the user."""


def _check_redirect(uri: str, client_type: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or (parts.scheme in ("http", "https") and not parts.netloc):
        raise RegistrationError(f"リダイレクト先URIの形式が正しくありません: {uri}")
    if client_type == "confidential":
        # Chatwork allows only https for confidential clients. The sandbox also allows
        # http://127.0.0.1 and http://localhost because the portal runs on plain HTTP in
        # development (http://127.0.0.1:5000); a real registration would need https.
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not loopback:
            raise RegistrationError(
                f"Confidentialクライアントは https のURIのみ登録できます: {uri}"
            )
    elif parts.scheme == "http":
        raise RegistrationError(f"Publicクライアントは http:// で始まるURIを登録できません: {uri}")


def register_client(
    data: ChatworkData, name: str, client_type: str, redirect_uris: list[str], scopes: list[str]
) -> OAuthClient:
    """Validate and store a new client; raise RegistrationError with a Japanese message."""
    name = name.strip()
    uris = [u.strip() for u in redirect_uris if u.strip()]
    if not name:
        raise RegistrationError("クライアント名を入力してください。")
    if client_type not in ("confidential", "public"):
        raise RegistrationError("クライアントタイプを選択してください。")
    if not 1 <= len(uris) <= MAX_REDIRECT_URIS:
        raise RegistrationError("リダイレクト先URIは1件以上5件以下で登録してください。")
    for uri in uris:
        _check_redirect(uri, client_type)
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise RegistrationError("スコープを1つ以上選択してください。")
    if "offline_access" in scopes and client_type != "confidential":
        raise RegistrationError("offline_access は Confidential クライアントのみ選択できます。")
    client = OAuthClient(
        client_id=secrets.token_urlsafe(24).replace("-", "a").replace("_", "b"),
        client_secret=secrets.token_urlsafe(48) if client_type == "confidential" else None,
        name=name,
        client_type=client_type,
        redirect_uris=uris,
        scopes=list(scopes),
        created_at=time.time(),
    )
    data.clients[client.client_id] = client
    return client
