"""Upstream addresses Pforte refuses unless the operator allows them: link-local networks and the cloud
metadata services reached through them (169.254.169.254, fd00:ec2::254). A base URL naming such an address
is refused when it is saved, and every new upstream connection checks the addresses its host name resolves
to, so that neither a literal in another notation nor a DNS name can reach them."""
from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger(__name__)

BLOCKED_NETWORKS = tuple(ipaddress.ip_network(net) for net in
                         ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"))


class BlockedAddress(OSError):
    """The upstream host is (or resolves to) a link-local or metadata address and these are not allowed."""


def is_blocked(address: str) -> bool:
    """True for an IP address in a blocked network (IPv4-mapped IPv6 forms and zone ids included)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in BLOCKED_NETWORKS)


def literal_is_blocked(host: str) -> bool:
    """True when `host` is an IP literal, in any notation the resolver accepts (2852039166, 0xa9.254.…),
    that lies in a blocked network. Host names are not looked up here."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    return any(is_blocked(info[4][0]) for info in infos)


def create_connection(host: str, port: int, timeout: float, allow_link_local: bool) -> socket.socket:
    """socket.create_connection, but only to resolved addresses that are not blocked (unless allowed)."""
    if allow_link_local:
        return socket.create_connection((host, port), timeout=timeout)
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    allowed = [info for info in infos if not is_blocked(info[4][0])]
    if not allowed:
        log.warning("refused to connect to %s: it resolves only to link-local or cloud-metadata addresses "
                    "(PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS allows them)", host)
        raise BlockedAddress("The upstream model server's address is link-local or a cloud metadata service, "
                             "which Pforte does not connect to.")
    error: OSError | None = None
    for family, kind, proto, _name, address in allowed:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error  # type: ignore[misc]  (allowed is not empty, so the loop set it)
