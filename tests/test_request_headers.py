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


def test_deleting_a_header_removes_its_lines():
    headers = parse(b"X-Drop: 5\r\nX-Keep: a\r\nx-drop: 6\r\n\r\n")
    del headers["x-drop"]
    assert headers.get("x-drop") is None
    assert headers.headers == ["X-Keep: a\r\n"]
    try:
        del headers["x-drop"]
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


def test_ambiguous_framing_has_a_status():
    """RFC 9112: what a proxy could read differently is refused (the live answer is a 400 and a close)."""
    assert parse(b"Content-Length : 5\r\n\r\n").status == "Malformed header line"
    assert parse(b"X-A: one\r\n two\r\n\r\n").status == "Malformed header line"
    assert parse(b"X-A: one\rtwo\r\n\r\n").status == "Malformed header line"
    assert parse(b"X-A: one\x00\r\n\r\n").status == "Malformed header line"
    assert parse(b"X-A: cut off").status == "Malformed header line"
    assert parse(b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n").status == "Invalid Content-Length"
    assert parse(b"Content-Length: 5, 6\r\n\r\n").status == "Invalid Content-Length"
    for value in (b"+5", b"-5", b"1_0", b"0x5", b"", b"5 5", b"9" * 40):
        assert parse(b"Content-Length: " + value + b"\r\n\r\n").status == "Invalid Content-Length", value
    assert parse(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").status != ""
    assert parse(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n").status != ""
    assert parse(b"Transfer-Encoding: gzip, chunked\r\n\r\n").status != ""


def test_clean_framing_passes():
    assert parse(b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n").get("content-length") == "5"
    assert parse(b"Content-Length: 5, 5\r\n\r\n").get("content-length") == "5"
    assert parse(b"Transfer-Encoding: Chunked\r\n\r\n").status == ""
    assert parse(b"X-Empty:\r\nX-Tab:\tv\t\r\n\r\n").get("x-tab") == "v"
