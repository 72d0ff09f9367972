"""Reading upstream bodies and events piece by piece (app/providers/response.py, http_framing.py,
sse_reader.py): whatever way the bytes are split across network reads, and however long a read waits,
nothing is lost."""
from __future__ import annotations

import socket
import threading

import pytest

from app.providers.base import UpstreamTarget
from app.providers.http_framing import BodyFrame
from app.providers.sse_reader import SseParser
from app.providers.transport import HttpTransport

PAYLOADS = [b'{"n":1,"text":"Gr\xc3\xbc\xc3\x9fe"}', b"", b'{"n":2}' * 40, b"x"]


def chunked(pieces: list[bytes], extension: bytes = b"", trailer: bytes = b"") -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces if p)
    return body + b"0\r\n" + trailer + b"\r\n"


def feed_split(frame: BodyFrame, raw: bytes, cut: int) -> bytes:
    return frame.feed(raw[:cut]) + frame.feed(raw[cut:])


@pytest.mark.parametrize("extension, trailer", [(b"", b""), (b";name=value", b"X-Checksum: abc\r\n")])
def test_chunked_body_split_at_every_byte(extension, trailer):
    raw = chunked(PAYLOADS, extension, trailer)
    for cut in range(len(raw) + 1):
        frame = BodyFrame(chunked=True, length=None)
        assert feed_split(frame, raw, cut) == b"".join(PAYLOADS), cut
        assert frame.done and not frame.extra, cut


def test_chunked_body_one_byte_at_a_time():
    raw = chunked(PAYLOADS)
    frame = BodyFrame(chunked=True, length=None)
    out = b"".join(frame.feed(raw[i:i + 1]) for i in range(len(raw)))
    assert out == b"".join(PAYLOADS) and frame.done


def test_bytes_after_the_last_chunk_make_the_connection_unusable():
    frame = BodyFrame(chunked=True, length=None)
    assert frame.feed(chunked([b"abc"]) + b"HTTP/1.1 200 OK\r\n") == b"abc"
    assert frame.done and frame.extra


@pytest.mark.parametrize("raw", [b"zz\r\nabc\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"])
def test_broken_chunk_framing_is_an_error(raw):
    with pytest.raises(ValueError):
        BodyFrame(chunked=True, length=None).feed(raw)


def test_content_length_body():
    frame = BodyFrame(chunked=False, length=10)
    assert frame.feed(b"0123") == b"0123" and not frame.done
    assert frame.feed(b"456789") == b"456789" and frame.done and not frame.extra
    longer = BodyFrame(chunked=False, length=3)
    assert longer.feed(b"abcdef") == b"abc" and longer.done and longer.extra


def test_end_of_connection_ends_only_an_undelimited_body():
    frame = BodyFrame(chunked=False, length=None)
    assert frame.feed(b"everything") == b"everything"
    frame.eof()
    assert frame.done
    for cut_off in (BodyFrame(chunked=True, length=None), BodyFrame(chunked=False, length=5)):
        with pytest.raises(ValueError):
            cut_off.eof()


STREAM = (b'data: {"a":1}\r\n\r\n: a comment\r\n\r\nevent: delta\r\ndata: {"b":\r\ndata: 2}\r\n\r\n'
          b"data: [DONE]\r\n\r\n")
EXPECTED = [(None, b'{"a":1}'), (b"delta", b'{"b":\n2}'), (None, b"[DONE]")]


@pytest.mark.parametrize("stream", [STREAM, STREAM.replace(b"\r\n", b"\n")])
def test_sse_events_split_at_every_byte(stream):
    for cut in range(len(stream) + 1):
        parser = SseParser()
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:]) + parser.close()
        assert events == EXPECTED, cut


def test_sse_last_event_without_blank_line_is_kept_at_the_end():
    parser = SseParser()
    assert parser.feed(b'data: {"a":1}\n\ndata: {"tail":true}') == [(None, b'{"a":1}')]
    assert parser.close() == [(None, b'{"tail":true}')]


def test_sse_bytes_ending_in_cr_piece_by_piece_are_parsed_and_bounded():
    """A stream whose reads each end inside a CRLF is parsed as it comes (not held until a read ends
    otherwise), so the event cap sees what is really pending."""
    parser = SseParser(max_event=100)
    events = []
    for _ in range(50):
        events += parser.feed(b'data: {"a":1}\r\n\r')
        events += parser.feed(b"\n")
    assert events == [(None, b'{"a":1}')] * 50 and not parser.overflow
    for _ in range(5):  # one unfinished event growing past the cap, every read ending in CR
        events = parser.feed(b"data: " + b"x" * 40 + b"\r")
    assert parser.overflow and events == []


def test_an_sse_event_over_the_cap_stops_the_parser_after_the_events_before_it():
    parser = SseParser(max_event=100)
    assert parser.feed(b"data: ok\n\ndata: " + b"x" * 200 + b"\n\ndata: later\n\n") == [(None, b"ok")]
    assert parser.overflow and parser.feed(b"data: more\n\n") == []


class OneShotServer:
    """A socket server that sends the given pieces, waiting for the test's go before each."""

    def __init__(self, pieces: list[bytes]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pieces = pieces
        self.go = [threading.Event() for _ in pieces]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            for piece, go in zip(self.pieces, self.go, strict=True):
                go.wait(10)
                conn.sendall(piece)
            conn.recv(1)  # until the client closes

    def close(self):
        for go in self.go:
            go.set()
        self.listener.close()


def target(port: int) -> UpstreamTarget:
    return UpstreamTarget(connection_id=1, name="test", kind="openai", base_url=f"http://127.0.0.1:{port}/v1",
                          api_key=None, connect_timeout=2.0, read_timeout=5.0, total_timeout=10.0)


def test_poll_waits_with_a_timeout_and_loses_nothing():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = chunked([b'data: {"first":1}\n\n', b'data: {"second":2}\n\n'])
    split = len(head) + 10  # the head and the start of the first chunk's size line and data
    server = OneShotServer([(head + body)[:split], (head + body)[split:]])
    client = HttpTransport(pool_size=4)
    try:
        server.go[0].set()
        response = client.send(target(server.port), f"http://127.0.0.1:{server.port}/v1/chat/completions",
                               b"{}", {})
        received = b""
        while not received:
            piece = response.poll(2.0)
            assert piece is not None
            received += piece
        assert received == b'data: {"first":1}\n\n'[:len(received)]
        assert response.poll(0.05) is None  # the upstream is silent: a timeout, not an error
        assert response.poll(0.05) is None
        server.go[1].set()
        while not response.done:
            piece = response.poll(2.0)
            assert piece is not None
            received += piece
        assert received == b'data: {"first":1}\n\ndata: {"second":2}\n\n'
        assert response.poll(0.05) == b""  # ended
        response.release_conn()
    finally:
        client.close()
        server.close()
