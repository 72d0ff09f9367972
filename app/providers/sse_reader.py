"""Reading an upstream's Server-Sent Events: split a byte stream into (event name, data) pairs.

Built for the hot path: the common block `data: {...}` costs one find and one slice; comments and
`event:` lines are handled, as are CRLF line endings and blocks split across network reads.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.providers.response import too_large

Event = tuple[bytes | None, bytes]


class SseParser:
    """Incremental: `feed` takes bytes as they arrive and returns the events completed by them.

    An event longer than `max_event` bytes (complete or still arriving) sets `overflow`: feed returns the
    events before it and the parser takes nothing more."""

    __slots__ = ("_buffer", "max_event", "overflow")

    def __init__(self, max_event: int | None = None):
        self._buffer = b""
        self.max_event = max_event
        self.overflow = False

    def feed(self, chunk: bytes) -> list[Event]:
        """The (event name or None, data) of every event with a `data:` field completed by `chunk`."""
        if self.overflow:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        tail = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # the \n of a CRLF may still be on its way: keep the \r for later
                buffer, tail = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = []
        start = 0
        limit = self.max_event
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            if limit is not None and end - start > limit:
                return self._overflowed(events)
            event = parse_block(buffer[start:end])
            start = end + 2
            if event is not None:
                events.append(event)
        self._buffer = (buffer[start:] if start else buffer) + tail
        if limit is not None and len(self._buffer) > limit:
            return self._overflowed(events)
        return events

    def _overflowed(self, events: list[Event]) -> list[Event]:
        self.overflow = True
        self._buffer = b""
        return events

    def close(self) -> list[Event]:
        """The last event when the stream ended without a blank line after it."""
        buffer, self._buffer = self._buffer, b""
        if not buffer.strip():
            return []
        event = parse_block(buffer.replace(b"\r\n", b"\n").strip(b"\n"))
        return [event] if event is not None else []


def iter_sse(chunks: Iterable[bytes], max_event: int | None = None) -> Iterator[Event]:
    """Yield (event name or None, data) for every event that has a `data:` field; an event longer than
    `max_event` bytes raises AnswerTooLarge after the events before it."""
    parser = SseParser(max_event)
    for chunk in chunks:
        if chunk:
            yield from parser.feed(chunk)
            if parser.overflow:
                raise too_large("a stream event", max_event)
    yield from parser.close()


def parse_block(block: bytes) -> Event | None:
    """One event block (lines without the blank separator) → (event, data), or None without data."""
    if block.startswith(b"data: ") and b"\n" not in block:
        return None, block[6:]
    name = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
    if not data:
        return None
    return name, b"\n".join(data)
