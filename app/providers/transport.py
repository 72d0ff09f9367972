"""Pooled HTTP/1.1 to upstreams, and the mapping of failures and error statuses to UpstreamError (DESIGN §6).

A deliberately small client: requests go out as one write, responses are read through a buffered
reader, and kept-alive connections wait in a pool per upstream host. Measured on the gateway's hot path
it costs a fraction of urllib3/http.client (about 70 µs of CPU per loopback round trip against about
600 µs), which is most of what separates the gateway from its throughput target. Under `pforte serve`
the sockets are gevent's, so thousands of requests wait concurrently.

Timeouts: connect (per attempt), read (between bytes, as the socket timeout) and total (whole answer, for
non-streaming requests here; the stream relay enforces it for streams). A failed connect, or a kept-alive
connection that the upstream had closed before it got our request, is retried once on a fresh
connection; nothing else is retried.

Proxies and CAs: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment (urllib's getproxies and
proxy_bypass) are honoured, http:// proxies only: plain http goes to the proxy as absolute-URI requests,
https through a CONNECT tunnel. The CA bundle (file or directory) in PFORTE_UPSTREAM_CA_BUNDLE, else in
REQUESTS_CA_BUNDLE or SSL_CERT_FILE, is trusted in addition to the system's CAs.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import ssl
import time
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import gevent
from gevent.monkey import get_original
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from app.api_errors import MAX_RETRY_AFTER
from app.catalog.entries import UpstreamTarget
from app.providers.base import UpstreamError, upstream_error, upstream_failed, upstream_timeout, upstream_unavailable

log = logging.getLogger(__name__)

MAX_POOLS = 64
MAX_ERROR_BODY = 64 * 1024
MAX_HEADER_LINE = 65536
MAX_HEADERS = 200
USER_AGENT = "Pforte"
_select = get_original("select", "select")  # never yields: only asks whether a socket is readable


class TotalTimeout(Exception):
    """The connection's total time limit ran out."""


class _Stale(Exception):
    """A kept-alive connection turned out to be closed before any response byte arrived."""


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


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    """Ask an http proxy for a CONNECT tunnel to host:port on a connected socket."""
    authority = _authority(host, port)
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
                 max_idle: int, tls: ssl.SSLContext | None = None, proxy: Proxy | None = None):
        self.scheme, self.host, self.port = scheme, host, port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.idle: deque[Connection] = deque()
        self._tls = (tls or ssl.create_default_context()) if scheme == "https" else None
        self.proxy = proxy
        # plain http through a proxy: absolute-URI requests (the proxy opens the upstream connection)
        self.absolute_prefix = f"http://{_authority(host, port)}" if proxy and scheme == "http" else ""

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
        address = (proxy.host, proxy.port) if proxy else (self.host, self.port)
        sock = socket.create_connection(address, timeout=self.connect_timeout)
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


class BodyFrame:
    """Takes the body out of raw bytes as they come: chunked, Content-Length or until the connection
    closes. Incremental, so that a read that waits with a timeout never loses what already arrived."""

    __slots__ = ("chunked", "remaining", "done", "extra", "_buffer", "_left", "_state")

    def __init__(self, chunked: bool, length: int | None):
        self.chunked = chunked
        self.remaining = length  # bytes still to come (Content-Length); None: chunked or until close
        self.done = length == 0
        self.extra = False  # bytes after the end of the body: the connection cannot be reused
        self._buffer = b""
        self._left = 0  # bytes of the current chunk still to come
        self._state = "size"

    def feed(self, data: bytes) -> bytes:
        """The body bytes in `data`; raises ValueError on broken framing."""
        if self.done:
            self.extra = self.extra or bool(data)
            return b""
        if not self.chunked:
            if self.remaining is None:
                return data
            if len(data) >= self.remaining:
                self.extra = len(data) > self.remaining
                data, self.remaining, self.done = data[:self.remaining], 0, True
                return data
            self.remaining -= len(data)
            return data
        return self._feed_chunked(data)

    def _feed_chunked(self, data: bytes) -> bytes:
        buffer = self._buffer + data if self._buffer else data
        out = []
        pos, size = 0, len(buffer)
        state, left = self._state, self._left
        while pos < size:
            if state == "data":
                take = min(left, size - pos)
                out.append(buffer[pos:pos + take])
                pos += take
                left -= take
                if left == 0:
                    state = "data-end"
                continue
            end = buffer.find(b"\n", pos)
            if end < 0:
                if size - pos > MAX_HEADER_LINE:
                    raise ValueError("overlong line in a chunked body")
                break
            line = buffer[pos:end]
            pos = end + 1
            if state == "size":
                left = int(line.split(b";", 1)[0].strip() or b"x", 16)
                state = "data" if left else "trailer"
            elif state == "data-end":
                if line.strip():
                    raise ValueError("a chunk is longer than its size")
                state = "size"
            elif line in (b"", b"\r"):  # the blank line after the trailers ends the body
                self.done = True
                self.extra = pos < size
                break
        self._buffer = buffer[pos:] if not self.done else b""
        self._state, self._left = state, left
        return b"".join(out)

    def eof(self) -> None:
        """The connection ended: fine for a body delimited by it, otherwise the body was cut off."""
        if self.chunked or self.remaining is not None:
            raise ValueError("the body was cut off")
        self.done = True


class Response:
    """An upstream response whose status and headers have been read; the body is read on demand.

    Reading errors are raised as urllib3's ReadTimeoutError / ProtocolError, which adapters map to
    upstream_timeout / upstream_failed."""

    def __init__(self, pool: HostPool, conn: Connection, status: int, headers: dict[str, str], reusable: bool,
                 url: str):
        self.status = status
        self.headers = headers
        self._pool = pool
        self._conn: Connection | None = conn
        self._url = url
        self._reusable = reusable
        self._head_buffer = True  # the head's reader may hold the first body bytes
        self._last_data = time.monotonic()  # for the read timeout: the longest silence between bytes
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if chunked:
            length = None
        elif length is not None and length.strip().isdigit():
            length = int(length)
        elif status in (204, 304):
            length = 0
        else:  # delimited by the end of the connection
            length = None
            self._reusable = False
        self._frame = BodyFrame(chunked, length)
        encoding = headers.get("content-encoding", "").lower()
        self._decoder = zlib.decompressobj(31 if "gzip" in encoding else 15) if encoding in (
            "gzip", "x-gzip", "deflate") else None

    @property
    def done(self) -> bool:
        return self._frame.done

    def poll(self, timeout: float) -> bytes | None:
        """Body bytes that arrive within `timeout` seconds (whatever is there, without waiting for more);
        None when nothing arrived; b"" once the body has ended (`done`). A timeout loses nothing; a silence
        of the connection's read timeout raises ReadTimeoutError."""
        frame = self._frame
        if frame.done:
            return b""
        conn = self._conn
        try:
            if self._head_buffer:
                self._head_buffer = False
                conn.sock.settimeout(0.0)  # read1 returns the buffered bytes, or tries the socket once
                try:
                    raw = conn.reader.read1(65536)
                except (BlockingIOError, ssl.SSLWantReadError):  # nothing buffered, nothing more yet
                    raw = b""
                finally:
                    conn.sock.settimeout(self._pool.read_timeout)
                if not raw:
                    return self.poll(timeout)
            else:
                read_timeout = self._pool.read_timeout
                silent = time.monotonic() - self._last_data
                conn.sock.settimeout(max(0.001, min(timeout, read_timeout - silent)))  # 0 would not wait
                try:
                    raw = conn.sock.recv(65536)
                except TimeoutError:
                    if time.monotonic() - self._last_data >= read_timeout:
                        raise ReadTimeoutError(None, self._url, "Read timed out.") from None
                    return None
                finally:
                    conn.sock.settimeout(read_timeout)
                self._last_data = time.monotonic()
                if not raw:
                    frame.eof()
                    return b""
            data = frame.feed(raw)
        except (OSError, ValueError) as exc:
            raise ProtocolError("The upstream connection broke.", exc) from None
        if frame.extra:
            self._reusable = False
        return self._decoder.decompress(data) if self._decoder and data else data

    def iter_chunks(self):
        """Body bytes as they arrive; a silence longer than the read timeout raises ReadTimeoutError."""
        while not self._frame.done:
            data = self.poll(self._pool.read_timeout)
            if data is None:
                raise ReadTimeoutError(None, self._url, "Read timed out.")
            if data:
                yield data

    def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes)."""
        parts, size = [], 0
        for data in self.iter_chunks():
            parts.append(data)
            size += len(data)
            if limit is not None and size >= limit:
                break
        return b"".join(parts)[:limit] if limit is not None else b"".join(parts)

    def release_conn(self) -> None:
        """Give the connection back: to the pool when the body was read to its end, else closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._frame.done and self._reusable:
            self._pool.checkin(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Abort: close the connection without reading the rest."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class HttpTransport:
    """One pool of kept-alive connections per upstream connection and host (at most `pool_size` idle)."""

    def __init__(self, pool_size: int = 256, ca_bundle: str | None = None):
        self.pool_size = pool_size
        self.ca_bundle = ca_bundle or ca_bundle_from_environment()
        self._tls: ssl.SSLContext | None = None
        self._pools: OrderedDict[tuple, HostPool] = OrderedDict()
        self._urls: dict[str, tuple] = {}

    def _split(self, url: str) -> tuple:
        parts = self._urls.get(url)
        if parts is None:
            split = urlsplit(url)
            if split.scheme not in ("http", "https") or not split.hostname:
                raise upstream_unavailable(f"The upstream URL {url!r} is not an http(s) URL.")
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
        key = (target.connection_id, scheme, host, port, target.connect_timeout, target.read_timeout)
        pool = self._pools.get(key)
        if pool is None:
            try:
                proxy = proxy_for(scheme, host)
            except ProxyError as exc:
                raise upstream_unavailable(str(exc)) from None
            if scheme == "https" and self._tls is None:
                try:
                    self._tls = tls_context(self.ca_bundle)
                except (ssl.SSLError, OSError) as exc:
                    log.error("the upstream CA bundle %s cannot be used: %s", self.ca_bundle, exc)
                    raise upstream_unavailable("The gateway's upstream CA bundle cannot be used (see the "
                                               "server log).") from None
            pool = HostPool(scheme, host, port, target.connect_timeout, target.read_timeout, self.pool_size,
                            tls=self._tls, proxy=proxy)
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
        Error statuses are raised as UpstreamError (with the body read and the connection released)."""
        scheme, host, port, host_header, path = self._split(url)
        pool = self.pool(target, scheme, host, port)
        fields = {"user-agent": ("User-Agent", USER_AGENT), "accept": ("Accept", "application/json"),
                  "accept-encoding": ("Accept-Encoding", "identity"),
                  "content-type": ("Content-Type", "application/json")}
        for name, value in headers.items():
            fields[name.lower()] = (name, value)
        if pool.proxy is not None and pool.proxy.authorization and pool.absolute_prefix:
            fields["proxy-authorization"] = ("Proxy-Authorization", pool.proxy.authorization)
        lines = [f"{method} {pool.absolute_prefix}{path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in fields.values()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            try:  # the retry opens a fresh connection: the other idle ones may be just as stale
                conn, reused = pool.checkout() if attempt == 1 else (pool.connect(), False)
            except (TimeoutError, ConnectionRefusedError, socket.gaierror, OSError) as exc:
                if attempt == 2 or isinstance(exc, ssl.SSLError | ProxyError):
                    raise _connect_error(exc) from None
                continue
            try:
                conn.sock.sendall(request)
                status, response_headers, keep_alive = _read_head(conn.reader)
            except (_Stale, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and attempt == 1:
                    continue
                raise upstream_failed("The upstream model server closed the connection.") from None
            except TimeoutError:
                conn.close()
                raise upstream_timeout() from None
            except (OSError, ValueError):
                conn.close()
                raise upstream_failed("The upstream model server sent an answer that is not HTTP.") from None
            response = Response(pool, conn, status, response_headers, keep_alive, url)
            if status >= 400:
                raise error_from_response(response, target)
            return response
        raise upstream_unavailable()  # not reached: the loop returns or raises

    def read_json(self, response: Response, target: UpstreamTarget) -> dict:
        """Read a whole JSON answer within the connection's total time limit."""
        try:
            with gevent.Timeout(target.total_timeout, TotalTimeout):
                data = response.read()
        except (ReadTimeoutError, TotalTimeout):
            response.close()
            raise upstream_timeout() from None
        except ProtocolError:
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


def _read_head(reader) -> tuple[int, dict[str, str], bool]:
    """Status line and headers (1xx interim answers skipped)."""
    while True:
        line = reader.readline(MAX_HEADER_LINE)
        if not line:
            raise _Stale()
        version, _, rest = line.decode("latin-1").partition(" ")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            header = reader.readline(MAX_HEADER_LINE)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise ValueError("cut off in the headers")
            name, _, value = header.decode("latin-1").partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise ValueError("too many headers")
        if status >= 200:
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
            return status, headers, keep_alive


def _connect_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, ProxyError):
        return upstream_unavailable(str(exc))
    if isinstance(exc, ssl.SSLError):
        return upstream_unavailable(f"TLS with the upstream model server failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError):
        return upstream_unavailable("Connecting to the upstream model server timed out.")
    return upstream_unavailable("The upstream model server cannot be reached.")


def _abort(response: Response) -> None:
    """Close a response that was not read to the end, so its connection is not reused."""
    response.close()


def error_from_response(response: Response, target: UpstreamTarget) -> UpstreamError:
    """Turn an upstream error status into what the client gets (DESIGN §6); the body is read and released."""
    status = response.status
    try:
        with gevent.Timeout(min(target.read_timeout, 10.0), TotalTimeout):
            raw = response.read(MAX_ERROR_BODY)
        response.release_conn()
    except (TotalTimeout, ReadTimeoutError, ProtocolError):
        raw = b""
        response.close()
    message, code, param = _upstream_error_fields(raw)
    message = scrub(target, message) or f"HTTP {status}"
    if status in (400, 413, 422):
        return upstream_error(400 if status == 422 else status, code or "invalid_request", message,
                             error_type="invalid_request_error", param=param)
    if status == 429:
        return upstream_error(429, "rate_limit_exceeded", f"The upstream model server is rate limited: {message}",
                             error_type="rate_limit_error", retry_after=_retry_after(response))
    if status in (401, 403):  # the connection's credential is wrong: an administrator has to fix it
        return upstream_failed(f"The upstream model server refused the gateway's credential (HTTP {status}).",
                               retryable=False)
    if status == 404:  # wrong upstream model name or base URL: the same on every attempt
        return upstream_failed(f"The upstream model server answered HTTP 404 (check the connection's base URL "
                               f"and the model's upstream name): {message}", retryable=False)
    if status in (408, 504, 524):
        return upstream_timeout(f"The upstream model server timed out (HTTP {status}).")
    if status in (503, 529):
        return upstream_unavailable(f"The upstream model server is unavailable (HTTP {status}): {message}")
    return upstream_failed(f"The upstream model server answered HTTP {status}: {message}")


def _upstream_error_fields(raw: bytes) -> tuple[str, str | None, str | None]:
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            param = error.get("param")
            return (str(error.get("message") or ""), str(code) if isinstance(code, str) else None,
                    param if isinstance(param, str) else None)
        if isinstance(error, str):
            return error, None, None
        if isinstance(payload.get("message"), str):
            return payload["message"], None, None
    return raw[:300].decode("utf-8", "replace").strip(), None, None


def _retry_after(response: Response) -> int:
    try:
        seconds = int(float(response.headers.get("retry-after", "1")))
    except ValueError:
        seconds = 1
    return max(1, min(seconds, MAX_RETRY_AFTER))


def scrub(target: UpstreamTarget, text: str) -> str:
    """Cut an upstream message to a readable length and remove the credential should it be echoed."""
    if target.api_key and len(target.api_key) >= 4:
        text = text.replace(target.api_key, "[redacted]")
    return text[:500]
