"""Reading an upstream's Server-Sent Events: split a byte stream into (event name, data) pairs.

Built for the hot path: the common block `data: {...}` costs one find and one slice; comments and
`event:` lines are handled, as are CRLF line endings and blocks split across network reads.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_sse(chunks: Iterable[bytes]) -> Iterator[tuple[bytes | None, bytes]]:
    """Yield (event name or None, data) for every event that has a `data:` field."""
    buffer = b""
    for chunk in chunks:
        if not chunk:
            continue
        buffer = buffer + chunk if buffer else chunk
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # the \n of a CRLF may still be on its way
                continue
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = parse_block(buffer[start:end])
            start = end + 2
            if event is not None:
                yield event
        buffer = buffer[start:]
    if buffer.strip():
        event = parse_block(buffer.replace(b"\r\n", b"\n").strip(b"\n"))
        if event is not None:
            yield event


def parse_block(block: bytes) -> tuple[bytes | None, bytes] | None:
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
