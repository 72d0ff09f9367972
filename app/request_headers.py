"""Request headers for gevent's pywsgi, parsed without the email package (about 27 µs → 3 µs a request).

pywsgi asks its MessageClass for `status` (not empty: the request is refused with 400 and the connection
closed), `get(name, default)` (case-insensitive, the first value), `del headers[name]` and `headers`, the
raw lines, which it turns into the HTTP_* keys of the WSGI environ. Limits as in http.client: lines of at
most 65,536 bytes and at most 100 headers; beyond them the request is refused instead of being half-read.

The framing is strict, as RFC 9112 asks of a server, so that no proxy in front can read a request's length
differently (request smuggling): refused are a line that is not `token ":" value` (whitespace before the
colon, a folded continuation line, a line without a colon), a bare CR or a NUL in a value, a
Content-Length that is not one number (signs, `1_0`, differing repeats), Transfer-Encoding other than
one `chunked`, and Transfer-Encoding together with Content-Length.
"""
from __future__ import annotations

import re

MAX_LINE = 65536
MAX_HEADERS = 100
END = (b"\r\n", b"\n", b"")

# Header lines, each field-name ":" field-value, where the name is an RFC 9110 token and the value has no
# CR, LF or NUL. Matched once over the whole head (per line costs twice as much), without backtracking.
_FIELD_LINES = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*+\r?\n)*+")
_FRAMING = frozenset(("content-length", "transfer-encoding"))
_DIGITS = re.compile(r"[0-9]{1,18}")


class RequestHeaders:
    __slots__ = ("headers", "status", "_first")

    def __init__(self, lines: list[str], status: str = ""):
        self.headers = lines  # "Name: value\r\n", in the order received
        self.status = status
        self._first: dict[str, str] = {}
        setdefault = self._first.setdefault
        framing = []
        for line in lines:
            name, _, value = line.partition(":")
            name = name.lower()
            value = value.strip()
            setdefault(name, value)
            if name in _FRAMING:
                framing.append((name, value))
        if framing:
            self.status = self._framing_error(framing)

    def _framing_error(self, framing: list[tuple[str, str]]) -> str:
        """Why the message's length is ambiguous, or "": Content-Length must be one number (repeats, in
        lines or as a list, all the same), Transfer-Encoding one `chunked`, and not both."""
        lengths = [part.strip() for name, value in framing if name == "content-length" for part in value.split(",")]
        codings = [value.lower() for name, value in framing if name == "transfer-encoding"]
        if lengths and codings:
            return "Both Transfer-Encoding and Content-Length"
        if codings and codings != ["chunked"]:
            return "Unsupported Transfer-Encoding"
        if lengths:
            if not all(_DIGITS.fullmatch(part) for part in lengths) or len(set(map(int, lengths))) > 1:
                return "Invalid Content-Length"
            self._first["content-length"] = lengths[0]
        return ""

    def get(self, name: str, default=None):
        return self._first.get(name.lower(), default)

    getheader = get

    @property
    def typeheader(self):
        return self.get("content-type")

    def __delitem__(self, name: str) -> None:
        lower = name.lower()
        if lower not in self._first:
            raise KeyError(name)
        del self._first[lower]
        self.headers = [line for line in self.headers if line.partition(":")[0].lower() != lower]


def parse_request_headers(rfile, *_args) -> RequestHeaders:
    """Read the header lines of one request from pywsgi's buffered reader."""
    raw: list[bytes] = []
    readline = rfile.readline
    while True:
        line = readline(MAX_LINE + 1)
        if line in END:
            break
        if len(line) > MAX_LINE:
            return RequestHeaders([], "Line too long")
        if len(raw) >= MAX_HEADERS:
            return RequestHeaders([], "Too many headers")
        raw.append(line)
    # folded lines, whitespace before a colon, no colon, a bare CR or a NUL, a head cut off
    if raw and _FIELD_LINES.fullmatch(b"".join(raw)) is None:
        return RequestHeaders([], "Malformed header line")
    return RequestHeaders([line.decode("latin-1") for line in raw])
