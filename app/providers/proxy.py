"""How upstreams are reached: proxies from the environment, CONNECT tunnels, and the trusted CAs.

HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment (urllib's getproxies and proxy_bypass) are
honoured, http:// proxies only: plain http goes to the proxy as absolute-URI requests, https through a
CONNECT tunnel. The CA bundle (file or directory) in PFORTE_UPSTREAM_CA_BUNDLE, else in
REQUESTS_CA_BUNDLE or SSL_CERT_FILE, is trusted in addition to the system's CAs.
"""
from __future__ import annotations

import base64
import os
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

from app.providers.http_framing import MAX_HEADER_LINE


class ProxyError(OSError):
    """The proxy could not be used (refused the tunnel, closed the connection, unsupported scheme)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # a Proxy-Authorization value when the proxy URL has user:password

    @property
    def display(self) -> str:
        return f"{self.host}:{self.port}"


def proxy_for(scheme: str, host: str) -> Proxy | None:
    """The proxy for requests to scheme://host per the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""
    url = getproxies().get(scheme)
    if not url or proxy_bypass(host):
        return None
    if "://" not in url:
        url = f"http://{url}"
    split = urlsplit(url)
    if split.scheme != "http" or not split.hostname:
        shown = f"{split.scheme}://{split.hostname or ''}" + (f":{split.port}" if split.port else "")
        raise ProxyError(f"The {scheme} proxy {shown} is not supported (only http:// proxies are).")
    authorization = None
    if split.username is not None:
        pair = f"{unquote(split.username)}:{unquote(split.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(split.hostname, split.port or 80, authorization)


def ca_bundle_from_environment() -> str | None:
    """REQUESTS_CA_BUNDLE or SSL_CERT_FILE, when PFORTE_UPSTREAM_CA_BUNDLE is not set."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The system's CAs plus the bundle (a PEM file or a directory of hashed certificates)."""
    context = ssl.create_default_context()
    if ca_bundle:
        if os.path.isdir(ca_bundle):
            context.load_verify_locations(capath=ca_bundle)
        else:
            context.load_verify_locations(cafile=ca_bundle)
    return context


def authority_of(host: str, port: int) -> str:
    """host:port as written in a CONNECT line (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    """Ask an http proxy for a CONNECT tunnel to host:port on a connected socket."""
    authority = authority_of(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:  # nothing follows the head before we speak TLS, so recv cannot over-read
        data = sock.recv(4096)
        if not data:
            raise ProxyError(f"The proxy {proxy.display} closed the connection instead of opening a tunnel.")
        head += data
        if len(head) > MAX_HEADER_LINE:
            raise ProxyError(f"The proxy {proxy.display} sent an overlong answer to CONNECT.")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].startswith("2"):
        raise ProxyError(f"The proxy {proxy.display} refused the tunnel to {authority} ({status_line.strip()}).")
