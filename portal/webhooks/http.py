"""POST one webhook to the address that was checked, never anywhere else.

The host name is resolved and every address checked (:func:`addresses.check_resolved`), then
the connection goes to that checked address — the ``Host`` header and, for https, the TLS
server name and certificate check keep the real host name — so a second DNS answer cannot swap
the target (DNS rebinding). Redirects are not followed: a 3xx is a failed attempt like any
non-2xx. At most :data:`models.RESPONSE_KEPT` bytes of the answer are read.

Connections are pooled per (scheme, address, port, host), so a busy endpoint reuses them.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from .addresses import check_resolved
from .models import RESPONSE_KEPT

#: Pools kept at most; beyond this the oldest are closed (one per endpoint address).
MAX_POOLS = 256
#: Bytes of an answer read past what is kept, so the connection can be reused; a longer
#: answer closes it instead.
DRAIN_LIMIT = 64 * 1024

USER_AGENT = "ChatConnect-Webhooks/1"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    duration_ms: int


class SendError(Exception):
    """No answer: ``code`` is "timeout", "connection" or "tls"; the message says more."""

    def __init__(self, code: str, message: str, duration_ms: int) -> None:
        super().__init__(message)
        self.code = code
        self.duration_ms = duration_ms


_pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
_lock = threading.Lock()


def _pool(scheme: str, address: str, port: int, host: str, size: int) -> urllib3.HTTPConnectionPool:
    key = (scheme, address, port, host)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            if len(_pools) >= MAX_POOLS:
                _pools.pop(next(iter(_pools))).close()
            if scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    address,
                    port,
                    maxsize=size,
                    block=False,
                    server_hostname=host,
                    assert_hostname=host,
                    ssl_context=ssl.create_default_context(),
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, port, maxsize=size, block=False)
            _pools[key] = pool
        return pool


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_loopback: bool,
    timeout: float,
    pool_size: int = 16,
) -> Answer:
    """POST ``body`` to ``url``; raise UnsafeWebhookURL (address refused) or SendError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    address = str(check_resolved(host, port, allow_loopback=allow_loopback)[0])
    default_port = port == (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent_headers = {
        **headers,
        "Host": host if default_port else f"{host}:{port}",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
    }
    started = time.monotonic()
    try:
        response = _pool(scheme, address, port, host, pool_size).urlopen(
            "POST",
            path,
            body=body,
            headers=sent_headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=min(5.0, timeout), read=timeout),
            preload_content=False,
        )
        try:
            kept = response.read(RESPONSE_KEPT)
            rest = response.length_remaining
            if rest is not None and rest <= DRAIN_LIMIT:
                response.drain_conn()
            else:
                response.close()  # an endless answer must not hold the worker
        finally:
            response.release_conn()
    except HTTPError as problem:
        elapsed = int((time.monotonic() - started) * 1000)
        name = type(problem).__name__
        code = "timeout" if "Timeout" in name else "tls" if "SSL" in name else "connection"
        raise SendError(code, f"{name}: {problem}"[:300], elapsed) from None
    return Answer(
        status=response.status,
        body=kept.decode("utf-8", "replace"),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
