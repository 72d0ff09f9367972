"""An upstream response: status and headers read, the body read on demand within the read timeout."""
from __future__ import annotations

import ssl
import time
import zlib
from dataclasses import dataclass

from app.providers.connection_pool import Connection, HostPool
from app.providers.http_framing import BodyFrame
from app.providers.transport_errors import AnswerTooLarge, ConnectionBroken, ReadTimedOut

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """The most an upstream may send (PFORTE_UPSTREAM_MAX_BODY_BYTES, _MAX_EVENT_BYTES, _MAX_INFLATED_BYTES):
    a whole answer that is read at once (JSON), one event of a stream, and what a compressed answer
    inflates to over its whole length."""

    body: int = 64 * MIB
    event: int = 4 * MIB
    inflated: int = 64 * MIB


def too_large(what: str, limit: int) -> AnswerTooLarge:
    """`what`: "an answer", "a stream event", "a compressed answer that, inflated, is"."""
    return AnswerTooLarge(f"The upstream model server sent {what} larger than this gateway accepts "
                          f"({limit} bytes).")


class Response:
    """An upstream response whose status and headers have been read; the body is read on demand.

    Reading errors are raised as ReadTimedOut / ConnectionBroken (transport_errors), which adapters map to
    upstream_timeout / upstream_failed."""

    def __init__(self, pool: HostPool, conn: Connection, status: int, headers: dict[str, str], reusable: bool,
                 url: str, limits: AnswerLimits = AnswerLimits()):
        self.status = status
        self.limits = limits
        self._inflated = 0
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
        of the connection's read timeout raises ReadTimedOut."""
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
                        raise ReadTimedOut() from None
                    return None
                finally:
                    conn.sock.settimeout(read_timeout)
                self._last_data = time.monotonic()
                if not raw:
                    frame.eof()
                    return b""
            data = frame.feed(raw)
        except (OSError, ValueError) as exc:
            raise ConnectionBroken() from exc
        if frame.extra:
            self._reusable = False
        return self._inflate(data) if self._decoder and data else data

    def _inflate(self, data: bytes) -> bytes:
        """Decompressed body bytes; never more than the inflation cap (a small gzip body can be huge)."""
        limit = self.limits.inflated
        out = self._decoder.decompress(data, limit - self._inflated + 1)
        self._inflated += len(out)
        if self._inflated > limit:
            raise too_large("a compressed answer that, inflated, is", limit)
        return out

    def iter_chunks(self):
        """Body bytes as they arrive; a silence longer than the read timeout raises ReadTimedOut."""
        while not self._frame.done:
            data = self.poll(self._pool.read_timeout)
            if data is None:
                raise ReadTimedOut()
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


def abort(response: Response) -> None:
    """Close a response that was not read to the end, so its connection is not reused."""
    response.close()
