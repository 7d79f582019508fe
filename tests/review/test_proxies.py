"""The client address and TLS behind reverse proxies: only trusted proxies are believed."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from review.proxies import client_address, over_tls


def request(peer: str, *headers: tuple[str, str], scheme: str = "http") -> Request:
    return Request({"type": "http", "method": "GET", "path": "/login", "scheme": scheme, "server": ("h", 80),
                    "client": (peer, 5000), "headers": [(k.lower().encode(), v.encode()) for k, v in headers]})


TRUSTED = ("10.0.0.0/24", "fd00::/8")


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("203.0.113.9", [("X-Forwarded-For", "198.51.100.1")], "203.0.113.9"),  # peer not trusted: header ignored
    ("10.0.0.5", [], "10.0.0.5"),  # trusted proxy, no header: the proxy itself
    ("10.0.0.5", [("X-Forwarded-For", "198.51.100.1")], "198.51.100.1"),
    ("10.0.0.5", [("X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.0.0.7")], "198.51.100.1"),  # two proxies
    ("10.0.0.5", [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.1")], "198.51.100.1"),
    ("10.0.0.5", [("X-Forwarded-For", "not-an-ip, 10.0.0.7")], "10.0.0.7"),  # garbage: the last trusted hop
    ("fd00::1", [("X-Forwarded-For", "2001:db8::5")], "2001:db8::5"),
    ("10.0.0.5", [("X-Forwarded-For", "10.0.0.8, 10.0.0.7")], "10.0.0.8"),  # all trusted: the furthest
])
def test_client_address(peer, headers, expected):
    assert client_address(request(peer, *headers), TRUSTED) == expected


def test_nothing_is_trusted_by_default():
    assert client_address(request("10.0.0.5", ("X-Forwarded-For", "198.51.100.1")), ()) == "10.0.0.5"
    assert not over_tls(request("10.0.0.5", ("X-Forwarded-Proto", "https")), ())


def test_tls_directly_or_from_a_trusted_proxy():
    assert over_tls(request("203.0.113.9", scheme="https"), ())
    assert over_tls(request("10.0.0.5", ("X-Forwarded-Proto", "https")), TRUSTED)
    assert not over_tls(request("203.0.113.9", ("X-Forwarded-Proto", "https")), TRUSTED)
    assert not over_tls(request("10.0.0.5", ("X-Forwarded-Proto", "https, http")), TRUSTED)  # nearest hop: http
