"""Where a webhook may be sent (SSRF guard, issue 17 item 4).

An endpoint URL is checked twice: when the admin saves it (:func:`check_url`: scheme, length,
no credentials, a host) and at every send, after DNS (:func:`check_resolved`): each address the
name resolves to must be public — not loopback, private, link-local (the cloud metadata service
at 169.254.169.254 is link-local), multicast, reserved or unspecified, IPv4-mapped IPv6 included.
Development and tests may allow loopback receivers (the sandbox's). The sender (still to come)
must connect to the checked address and refuse redirects, so a second lookup cannot swap
the target (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask_babel import gettext as _

MAX_URL = 2000
#: Cloud metadata addresses outside the ranges ``ipaddress`` already refuses (AWS's IPv6 one).
METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254")})


class UnsafeWebhookURL(ValueError):
    """``reason`` says why the URL is refused, in the current language (shown in the form)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_url(url: str, *, require_https: bool) -> str:
    """The URL, stripped, if it may be saved; else UnsafeWebhookURL."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise UnsafeWebhookURL(_("The URL is longer than %(limit)d characters.", limit=MAX_URL))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeWebhookURL(_("This is not a valid URL.")) from None
    allowed = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise UnsafeWebhookURL(
            _("The URL must start with https://.")
            if require_https
            else _("The URL must start with https:// or http://.")
        )
    if not parts.hostname:
        raise UnsafeWebhookURL(_("The URL has no host name."))
    if parts.username or parts.password:
        raise UnsafeWebhookURL(_("The URL must not contain a user name or password."))
    if port == 0:
        raise UnsafeWebhookURL(_("The URL's port is not valid."))
    return url


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may go to ``address``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in METADATA
    )


def check_resolved(
    host: str, port: int, *, allow_loopback: bool = False
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Resolve ``host`` and return its addresses if every one may be sent to; else
    UnsafeWebhookURL. ``allow_loopback`` lets development and tests reach a local receiver
    (loopback only — private and metadata addresses stay refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeWebhookURL(_("The host name %(host)s does not resolve.", host=host)) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if allow_loopback and address.is_loopback:
            continue
        if not public(address):
            raise UnsafeWebhookURL(
                _(
                    "%(host)s resolves to %(address)s, which is not a public address: webhooks"
                    " cannot be sent to internal networks.",
                    host=host,
                    address=str(address),
                )
            )
    return addresses
