"""A key's IP allow list: IPv4/IPv6 addresses and CIDR ranges, parsed once per distinct list."""
from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from app.client_ip import Network, NetworkEntryError, parse_network_entry

log = logging.getLogger(__name__)


class InvalidEntry(NetworkEntryError):
    """An allow-list entry that is not usable (see app.client_ip.parse_network_entry); `entry` is the
    offending text, `reason` and `suggestion` say why and what to enter instead."""


def parse_entry(entry: str) -> Network:
    """'10.0.0.0/8', '2001:db8::/32', '192.0.2.7' → network. Host bits are allowed ('10.1.2.3/8' = 10/8);
    zone ids and IPv4-mapped forms are refused (they would never match)."""
    try:
        return parse_network_entry(entry)
    except NetworkEntryError as exc:
        raise InvalidEntry(exc.entry, exc.reason, exc.suggestion) from exc


def normalise(entries: list[str] | tuple[str, ...] | str) -> list[str]:
    """Validate an allow list (a list, or text separated by commas, semicolons, spaces or new lines) and
    return its canonical entries ('10.0.0.1/32' → '10.0.0.1', '10.1.2.3/8' → '10.0.0.0/8'), duplicates
    removed, order kept. Raises InvalidEntry for the first bad entry."""
    if isinstance(entries, str):
        entries = entries.replace(",", " ").replace(";", " ").split()
    result: list[str] = []
    for entry in entries:
        if not entry.strip():
            continue
        net = parse_entry(entry)
        text = str(net.network_address) if net.num_addresses == 1 else str(net)
        if text not in result:
            result.append(text)
    return result


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[tuple[Network, ...], tuple[Network, ...]]:
    """(IPv4 networks, IPv6 networks) of a key's list. Invalid entries are skipped (and logged): they
    match nothing, so a list with only invalid entries refuses every address."""
    v4: list[Network] = []
    v6: list[Network] = []
    for entry in cidrs:
        try:
            net = parse_entry(entry)
        except InvalidEntry:
            log.warning("ignoring an invalid entry in a key's IP allow list")
            continue
        (v4 if net.version == 4 else v6).append(net)
    return tuple(v4), tuple(v6)


@lru_cache(maxsize=16384)
def _address(text: str):
    """Parsed client address (IPv4-mapped IPv6 addresses become IPv4), or None when it is not an IP."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def allowed(client_ip: str, cidrs: tuple[str, ...]) -> bool:
    """True when the list is empty or contains client_ip. An unparsable client address is refused."""
    if not cidrs:
        return True
    ip = _address(client_ip or "")
    if ip is None:
        return False
    v4, v6 = _networks(cidrs)
    return any(ip in net for net in (v4 if ip.version == 4 else v6))
