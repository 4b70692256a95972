"""The SSRF guard (issue 17 item 4): URLs refused when saved (scheme, length, credentials),
and every resolved address checked — loopback, private, link-local (cloud metadata),
multicast, reserved, unspecified and IPv4-mapped forms of them refused; loopback allowed only
when asked (development, tests)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.webhooks.addresses import UnsafeWebhookURL, check_resolved, check_url, public


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example/x", "https://"),
        ("http://hooks.example/x", "https://"),
        ("https://" + "a" * 2000 + ".example/", "longer than"),
        ("https://user:pw@hooks.example/", "user name"),
        ("https:///path-only", "no host name"),
        ("https://[::1/", "not a valid URL"),
        ("https://hooks.example:0/", "port is not valid"),
        ("javascript:alert(1)", "https://"),
    ],
)
def test_urls_refused_when_saved(url: str, reason: str) -> None:
    with pytest.raises(UnsafeWebhookURL, match=reason):
        check_url(url, require_https=True)


def test_urls_accepted_when_saved() -> None:
    assert check_url(" https://hooks.example/chat-connect ", require_https=True) == (
        "https://hooks.example/chat-connect"
    )
    assert check_url("http://127.0.0.1:8080/hook", require_https=False).startswith("http://")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address the guard must refuse, not a bind
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not public(ipaddress.ip_address(address))


def test_public_addresses_are() -> None:
    assert public(ipaddress.ip_address("93.184.216.34"))
    assert public(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="169.254.0.0/16")
       | st.ip_addresses(network="fc00::/7") | st.ip_addresses(network="127.0.0.0/8"))  # fmt: skip
def test_no_address_in_an_internal_range_is_public(address: object) -> None:
    assert not public(address)  # type: ignore[arg-type]


def test_resolution_is_checked_and_loopback_only_when_allowed() -> None:
    with pytest.raises(UnsafeWebhookURL, match="not a public address"):
        check_resolved("localhost", 443)
    assert all(a.is_loopback for a in check_resolved("127.0.0.1", 443, allow_loopback=True))
    with pytest.raises(UnsafeWebhookURL, match="not a public address"):
        check_resolved("169.254.169.254", 80, allow_loopback=True)
    with pytest.raises(UnsafeWebhookURL, match="does not resolve"):
        check_resolved("no-such-host.invalid", 443)
