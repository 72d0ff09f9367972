"""The client's IP address: the socket peer, or X-Forwarded-For walked from the right across trusted proxies."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=64)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, ::1' → networks. Invalid entries raise ValueError."""
    items = [part.strip() for part in (spec or "").replace(";", ",").split(",") if part.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _in_any(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def address_in_networks(address: str, spec: str) -> bool:
    """True if `address` (IPv4-mapped IPv6 included) lies in one of the networks listed in `spec`."""
    return _in_any(address, parse_networks(spec or ""))


def resolve_client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: str) -> str:
    """Socket address unless it is a trusted proxy; then the right-most untrusted X-Forwarded-For hop."""
    address = remote_addr or ""
    networks = parse_networks(trusted_proxies or "")
    if not networks or not forwarded_for or not _in_any(address, networks):
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in_any(hop, networks):
            return hop
        address = hop
    return address


def request_client_ip() -> str:
    """Client IP of the current Flask request, honouring PFORTE_TRUSTED_PROXIES."""
    from flask import current_app, request

    return resolve_client_ip(
        request.remote_addr,
        request.headers.get("X-Forwarded-For"),
        current_app.config.get("PFORTE_TRUSTED_PROXIES", ""),
    )
