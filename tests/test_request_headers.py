"""Request-header parsing for pywsgi (app/request_headers.py): what pywsgi reads of it, and its limits."""
from __future__ import annotations

import io

from app.request_headers import MAX_HEADERS, parse_request_headers


def parse(raw: bytes):
    return parse_request_headers(io.BytesIO(raw), 0)


def test_lookup_is_case_insensitive_and_takes_the_first_value():
    headers = parse(b"Content-Length: 12\r\nX-Dup: one\r\nx-dup: two\r\nConnection:  close \r\n\r\nBODY")
    assert headers.status == ""
    assert headers.get("content-length") == "12" and headers.get("CONTENT-LENGTH") == "12"
    assert headers.get("X-DUP") == "one"
    assert headers.get("Connection") == "close"
    assert headers.get("missing", "default") == "default"
    assert headers.headers == ["Content-Length: 12\r\n", "X-Dup: one\r\n", "x-dup: two\r\n", "Connection:  close \r\n"]


def test_reading_stops_at_the_blank_line():
    stream = io.BytesIO(b"Host: a\n\nBODY")
    assert parse_request_headers(stream).get("host") == "a"
    assert stream.read() == b"BODY"


def test_deleting_a_header_removes_its_lines_and_folded_continuations():
    headers = parse(b"Content-Length: 5\r\n  folded\r\nTransfer-Encoding: chunked\r\n\r\n")
    del headers["content-length"]
    assert headers.get("content-length") is None
    assert headers.headers == ["Transfer-Encoding: chunked\r\n"]
    try:
        del headers["content-length"]
    except KeyError:
        pass
    else:
        raise AssertionError("deleting a missing header must raise KeyError")


def test_refused_inputs_have_a_status():
    assert parse(b"X: " + b"a" * 70000 + b"\r\n\r\n").status == "Line too long"
    assert parse(b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n").status == "Too many headers"
    assert parse(b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n").status == ""
    assert parse(b"no colon here\r\n\r\n").status == "Malformed header line"
    assert parse(b" folded first\r\n\r\n").status == "Malformed header line"
