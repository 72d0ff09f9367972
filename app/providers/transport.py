"""Pooled HTTP/1.1 to upstreams: the one path every request to an upstream takes, "Test connection" too.

A deliberately small client: requests go out as one write, responses are read through a buffered
reader, and kept-alive connections wait in a pool per upstream host. Measured on the gateway's hot path
it costs a fraction of urllib3/http.client (about 70 µs of CPU per loopback round trip against about
600 µs), which is most of what separates the gateway from its throughput target. Under `pforte serve`
the sockets are gevent's, so thousands of requests wait concurrently.

Timeouts: connect (per attempt), read (between bytes, as the socket timeout) and total (whole answer, for
non-streaming requests here; the stream relay enforces it for streams). A failed connect, or a kept-alive
connection that the upstream had closed before it got our request, is retried once on a fresh
connection; nothing else is retried.

Proxies and trusted CAs are chosen in proxy.py; the connections wait in connection_pool.py; answers are
framed by http_framing.py and read through response.py. `open` raises the transport's own failures
(transport_errors.py); `send`, the gateway's way in, raises UpstreamError instead (upstream_errors.py).
"""
from __future__ import annotations

import json
import logging
import re
import socket
import ssl
from collections import OrderedDict
from urllib.parse import urlsplit

import gevent

from app.providers.addresses import BlockedAddress
from app.providers.base import UpstreamTarget, upstream_failed, upstream_timeout
from app.providers.connection_pool import HostPool
from app.providers.http_framing import Stale, read_head
from app.providers.proxy import ProxyError, ca_bundle_from_environment, proxy_for, tls_context
from app.providers.response import AnswerLimits, Response, too_large
from app.providers.transport_errors import (
    AnswerTooLarge,
    ConnectFailed,
    ConnectionBroken,
    ReadTimedOut,
    TotalTimeout,
    TransportError,
)
from app.providers.upstream_errors import error_from_response, from_transport_error

log = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"[\r\n\x00]")

MAX_POOLS = 64
USER_AGENT = "Pforte"


class HttpTransport:
    """One pool of kept-alive connections per upstream connection and host (at most `pool_size` idle)."""

    def __init__(self, pool_size: int = 256, ca_bundle: str | None = None, limits: AnswerLimits = AnswerLimits()):
        self.pool_size = pool_size
        self.limits = limits
        self.ca_bundle = ca_bundle or ca_bundle_from_environment()
        self._tls: ssl.SSLContext | None = None
        self._pools: OrderedDict[tuple, HostPool] = OrderedDict()
        self._urls: dict[str, tuple] = {}

    def _split(self, url: str) -> tuple:
        parts = self._urls.get(url)
        if parts is None:
            split = urlsplit(url)
            if split.scheme not in ("http", "https") or not split.hostname:
                raise ConnectFailed(f"The upstream URL {url!r} is not an http(s) URL.", reason="config")
            port = split.port or (443 if split.scheme == "https" else 80)
            default = (split.scheme == "https" and port == 443) or (split.scheme == "http" and port == 80)
            host_header = split.hostname if default else f"{split.hostname}:{port}"
            if ":" in split.hostname:  # IPv6 literal
                host_header = f"[{split.hostname}]" + ("" if default else f":{port}")
            path = (split.path or "/") + (f"?{split.query}" if split.query else "")
            parts = (split.scheme, split.hostname, port, host_header, path)
            if len(self._urls) > 4096:
                self._urls.clear()
            self._urls[url] = parts
        return parts

    def pool(self, target: UpstreamTarget, scheme: str, host: str, port: int) -> HostPool:
        key = (target.connection_id, scheme, host, port, target.connect_timeout, target.read_timeout,
               target.allow_link_local)
        pool = self._pools.get(key)
        if pool is None:
            try:
                proxy = proxy_for(scheme, host)
            except ProxyError as exc:
                raise ConnectFailed(str(exc), reason="proxy") from None
            if scheme == "https" and self._tls is None:
                try:
                    self._tls = tls_context(self.ca_bundle)
                except (ssl.SSLError, OSError) as exc:
                    log.error("the upstream CA bundle %s cannot be used: %s", self.ca_bundle, exc)
                    raise ConnectFailed("The gateway's upstream CA bundle cannot be used (see the server log).",
                                        reason="tls") from None
            pool = HostPool(scheme, host, port, target.connect_timeout, target.read_timeout, self.pool_size,
                            tls=self._tls, proxy=proxy, allow_link_local=target.allow_link_local)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)[1].close()
        return pool

    def close(self) -> None:
        while self._pools:
            self._pools.popitem()[1].close()

    def send(self, target: UpstreamTarget, url: str, body: bytes, headers: dict[str, str],
             method: str = "POST") -> Response:
        """Send a request; returns the response once its status line and headers are in (body unread).
        Failures and error statuses are raised as UpstreamError (an error status with its body read and
        the connection released)."""
        try:
            response = self.open(target, url, body, headers, method)
        except TransportError as exc:
            raise from_transport_error(exc) from None
        if response.status >= 400:
            raise error_from_response(response, target)
        return response

    def open(self, target: UpstreamTarget, url: str, body: bytes, headers: dict[str, str],
             method: str = "POST") -> Response:
        """Send a request; returns the response, whatever its status, once its status line and headers are
        in (body unread). Raises TransportError (ConnectFailed, ReadTimedOut, ConnectionBroken)."""
        scheme, host, port, host_header, path = self._split(url)
        pool = self.pool(target, scheme, host, port)
        fields = {"user-agent": ("User-Agent", USER_AGENT), "accept": ("Accept", "application/json"),
                  "accept-encoding": ("Accept-Encoding", "identity"),
                  "content-type": ("Content-Type", "application/json")}
        for name, value in headers.items():
            fields[name.lower()] = (name, value)
        if pool.proxy is not None and pool.proxy.authorization and pool.absolute_prefix:
            fields["proxy-authorization"] = ("Proxy-Authorization", pool.proxy.authorization)
        _refuse_line_breaks(fields.values(), path)
        lines = [f"{method} {pool.absolute_prefix}{path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in fields.values()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            try:  # the retry opens a fresh connection: the other idle ones may be just as stale
                conn, reused = pool.checkout() if attempt == 1 else (pool.connect(), False)
            except (TimeoutError, ConnectionRefusedError, socket.gaierror, OSError) as exc:
                if attempt == 2 or isinstance(exc, ssl.SSLError | ProxyError | BlockedAddress):
                    raise _connect_error(exc) from None
                continue
            try:
                conn.sock.sendall(request)
                status, response_headers, keep_alive = read_head(conn.reader)
            except (Stale, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and attempt == 1:
                    continue
                raise ConnectionBroken("The upstream model server closed the connection.") from None
            except TimeoutError:
                conn.close()
                raise ReadTimedOut() from None
            except (OSError, ValueError):
                conn.close()
                raise ConnectionBroken("The upstream model server sent an answer that is not HTTP.") from None
            return Response(pool, conn, status, response_headers, keep_alive, url, self.limits)
        raise ConnectFailed()  # not reached: the loop returns or raises

    def read_json(self, response: Response, target: UpstreamTarget) -> dict:
        """Read a whole JSON answer within the connection's total time limit and the body cap."""
        limit = self.limits.body
        try:
            length = response.headers.get("content-length", "")
            if length.strip().isdigit() and int(length) > limit:
                raise too_large("an answer", limit)
            with gevent.Timeout(target.total_timeout, TotalTimeout):
                data = response.read(limit + 1)
            if len(data) > limit:
                raise too_large("an answer", limit)
        except AnswerTooLarge as exc:
            response.close()
            raise upstream_failed(exc.message) from None
        except (ReadTimedOut, TotalTimeout):
            response.close()
            raise upstream_timeout() from None
        except ConnectionBroken:
            response.close()
            raise upstream_failed("The upstream model server broke off its answer.") from None
        response.release_conn()
        try:
            value = json.loads(data)
        except ValueError:
            raise upstream_failed("The upstream model server sent malformed JSON.") from None
        if not isinstance(value, dict):
            raise upstream_failed("The upstream model server sent an unexpected answer.")
        return value


def _refuse_line_breaks(fields, path: str) -> None:
    """A CR, LF or NUL in a header or the path would end its line and inject what follows: refuse to send."""
    for name, value in fields:
        if _LINE_BREAK.search(name) or _LINE_BREAK.search(value):
            raise ConnectFailed(f"The upstream request header {name!r} contains a line break or NUL, so it was "
                                f"not sent. Check the connection's settings.", reason="config")
    if _LINE_BREAK.search(path):
        raise ConnectFailed("The upstream address contains a line break or NUL, so the request was not sent.",
                            reason="config")


def _connect_error(exc: Exception) -> ConnectFailed:
    if isinstance(exc, BlockedAddress):
        return ConnectFailed(str(exc), reason="blocked")
    if isinstance(exc, ProxyError):
        return ConnectFailed(str(exc), reason="proxy")
    if isinstance(exc, ssl.SSLError):
        return ConnectFailed(f"TLS with the upstream model server failed: {exc.reason or exc}", reason="tls")
    if isinstance(exc, TimeoutError):
        return ConnectFailed("Connecting to the upstream model server timed out.", reason="timeout")
    return ConnectFailed("The upstream model server cannot be reached.")
