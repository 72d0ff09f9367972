"""Kept-alive connections to upstreams, one pool per scheme://host:port (through a proxy if one applies)."""
from __future__ import annotations

import socket
import ssl
from collections import deque

from gevent.monkey import get_original

from app.providers.addresses import create_connection
from app.providers.proxy import Proxy, authority_of, open_tunnel

_select = get_original("select", "select")  # never yields: only asks whether a socket is readable


class Connection:
    __slots__ = ("sock", "reader")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)

    def looks_closed(self) -> bool:
        """An idle connection that is readable has been closed (or sent garbage): do not reuse it."""
        try:
            return bool(_select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class HostPool:
    """Idle kept-alive connections to one scheme://host:port; a new one is opened when none is idle."""

    def __init__(self, scheme: str, host: str, port: int, connect_timeout: float, read_timeout: float,
                 max_idle: int, tls: ssl.SSLContext | None = None, proxy: Proxy | None = None,
                 allow_link_local: bool = False):
        self.scheme, self.host, self.port = scheme, host, port
        self.allow_link_local = allow_link_local
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.idle: deque[Connection] = deque()
        self._tls = (tls or ssl.create_default_context()) if scheme == "https" else None
        self.proxy = proxy
        # plain http through a proxy: absolute-URI requests (the proxy opens the upstream connection)
        self.absolute_prefix = f"http://{authority_of(host, port)}" if proxy and scheme == "http" else ""

    def checkout(self) -> tuple[Connection, bool]:
        """A connection and whether it was kept alive from an earlier request."""
        while self.idle:
            conn = self.idle.pop()
            if not conn.looks_closed():
                return conn, True
            conn.close()
        return self.connect(), False

    def connect(self) -> Connection:
        proxy = self.proxy
        if proxy:  # the proxy, set by the operator, resolves the upstream's name itself
            sock = socket.create_connection((proxy.host, proxy.port), timeout=self.connect_timeout)
        else:
            sock = create_connection(self.host, self.port, self.connect_timeout, self.allow_link_local)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                if proxy:
                    open_tunnel(sock, proxy, self.host, self.port)
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        return Connection(sock)

    def checkin(self, conn: Connection) -> None:
        if len(self.idle) < self.max_idle:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
