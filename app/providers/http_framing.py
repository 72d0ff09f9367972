"""HTTP/1.1 message framing: the status line and headers of an answer, and its body out of raw bytes."""
from __future__ import annotations

MAX_HEADER_LINE = 65536
MAX_HEADERS = 200


class Stale(Exception):
    """A kept-alive connection turned out to be closed before any response byte arrived."""


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


def read_head(reader) -> tuple[int, dict[str, str], bool]:
    """Status line and headers (1xx interim answers skipped)."""
    while True:
        line = reader.readline(MAX_HEADER_LINE)
        if not line:
            raise Stale()
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
