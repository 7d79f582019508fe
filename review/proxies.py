"""Who is calling, behind reverse proxies: the client address for login throttling, and whether the
request reached us over TLS (for HSTS).

Only proxies listed in ``trusted_proxies`` are believed. Without that setting every request is keyed by
its connecting peer: behind an untrusted proxy, all clients share the proxy's address (and its
throttling limit), and nobody can pick their own key by sending ``X-Forwarded-For``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.requests import Request

Network = IPv4Network | IPv6Network


@lru_cache(maxsize=8)
def networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ip_network(t, strict=False) for t in trusted)


def _trusted(address: str, nets: Iterable[Network]) -> bool:
    try:
        ip = ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in nets)


def peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def client_address(request: Request, trusted: tuple[str, ...]) -> str:
    """The client's address: ``X-Forwarded-For`` read from the right, skipping trusted proxies, when the
    connecting peer is a trusted proxy; the peer otherwise."""
    nets = networks(trusted)
    addr = peer(request)
    if not nets or not _trusted(addr, nets):
        return addr
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ip_address(hop.strip("[]"))
        except ValueError:
            return addr  # not written by a proxy we trust: keep the last trusted hop
        if not _trusted(hop, nets):
            return hop
        addr = hop
    return addr


def over_tls(request: Request, trusted: tuple[str, ...]) -> bool:
    """True when served over TLS: directly (uvicorn with a certificate), or by a trusted proxy that
    terminated TLS and says so in ``X-Forwarded-Proto``."""
    if request.url.scheme == "https":
        return True
    nets = networks(trusted)
    if not nets or not _trusted(peer(request), nets):
        return False
    proto = (request.headers.get("x-forwarded-proto") or "").split(",")[-1].strip().lower()
    return proto == "https"
