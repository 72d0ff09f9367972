"""The client's IP address: the socket peer, or X-Forwarded-For walked from the right across trusted proxies;
what the per-IP limit counts it as; and the parsing of allow-list entries shared by keys and policy."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_CLIENT_PREFIX = 64  # a host picks any address of its /64 (SLAAC, privacy addresses)


class NetworkEntryError(ValueError):
    """An allow-list entry that cannot be used. `reason`: invalid | zone (a zone id such as %eth0) | mapped
    (an IPv4-mapped IPv6 form); `suggestion` is what to enter instead (None for invalid)."""

    def __init__(self, entry: str, reason: str = "invalid", suggestion: str | None = None):
        super().__init__(entry)
        self.entry, self.reason, self.suggestion = entry, reason, suggestion


def parse_network_entry(entry: str) -> Network:
    """'10.0.0.0/8', '2001:db8::/32', '192.0.2.7' → network (host bits allowed: '10.1.2.3/8' = 10/8).
    Zone ids and IPv4-mapped forms raise NetworkEntryError: clients are matched without a zone and by
    their IPv4 address, so such an entry would never match."""
    text = entry.strip()
    address, slash, length = text.partition("/")
    if "%" in address:
        try:
            bare = ipaddress.ip_network(address.split("%", 1)[0] + slash + length, strict=False)
        except ValueError:
            raise NetworkEntryError(text) from None
        raise NetworkEntryError(text, "zone", str(bare.network_address) if bare.num_addresses == 1 else str(bare))
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise NetworkEntryError(text) from None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None:
        prefix = max(network.prefixlen - 96, 0)
        ipv4 = ipaddress.ip_network(f"{mapped}/{prefix}", strict=False)
        raise NetworkEntryError(text, "mapped", str(ipv4.network_address) if prefix == 32 else str(ipv4))
    return network


@lru_cache(maxsize=16384)
def rate_limit_subject(address: str) -> str:
    """What the per-IP limit counts: an IPv6 client by its /64, an IPv4-mapped one by its IPv4 address,
    an IPv4 client by its address; text that is no address stays as it is."""
    if ":" not in address:  # IPv4 (or no address at all): as it is, without parsing
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    host_bits = 128 - IPV6_CLIENT_PREFIX
    return f"{ipaddress.IPv6Address(int(ip) >> host_bits << host_bits)}/{IPV6_CLIENT_PREFIX}"


@lru_cache(maxsize=64)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, ::1' → networks. Invalid entries, zone ids and IPv4-mapped forms raise NetworkEntryError
    (a ValueError)."""
    items = [part.strip() for part in (spec or "").replace(";", ",").split(",") if part.strip()]
    return tuple(parse_network_entry(item) for item in items)


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
