"""Connections are bounded in time and number (app/server.py): a request's head must arrive in time, an
idle kept-alive connection is closed, a client that stops reading a stream is cut off (its upstream, its
key's concurrency slot and its row are settled), a connection over the cap gets a 503, and admin pages
take bodies up to a limit. All against a real `pforte serve`, with raw sockets where the framing matters."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from support.opskit import MODEL, auth, create_key, post_chat, query
from support.waiting import wait_until
from support.web import CSRF_FIELD

TIMEOUT = 2  # seconds, for the header, idle and write timeouts of these servers
MARGIN = 4  # what a busy test machine may add to a timeout


@pytest.fixture
def strict(gateway):
    """A server with short connection timeouts; (server, key)."""
    return gateway(env={"PFORTE_HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "PFORTE_IDLE_TIMEOUT_SECONDS": str(TIMEOUT),
                        "PFORTE_WRITE_TIMEOUT_SECONDS": str(TIMEOUT), "PFORTE_RATELIMIT_PER_IP": "100000/minute"})


def connect(server, **options) -> socket.socket:
    sock = socket.socket()
    for name, value in options.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    sock.settimeout(TIMEOUT + MARGIN + 5)
    sock.connect(("127.0.0.1", server.port))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError if it keeps the connection open."""
    answer = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return answer
        if not data:
            return answer
        answer += data


def read_response(sock: socket.socket) -> bytes:
    """One answer with a Content-Length, head and body, from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_half_sent_request_heads_are_closed_after_the_header_timeout(strict):
    server, _key = strict
    socks = [connect(server) for _ in range(200)]
    for sock in socks[:100]:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\n")  # and never the blank line
    for sock in socks[100:160]:
        sock.sendall(b"GET /healthz HT")  # half a request line
    # socks[160:] send nothing at all
    sent = time.monotonic()
    answers = [read_until_closed(sock) for sock in socks]
    assert time.monotonic() - sent <= TIMEOUT + MARGIN
    for sock in socks:
        sock.close()
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[:3]
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_head_sent_line_by_line_does_not_extend_the_header_timeout(strict):
    """Slowloris: a header line every half second; the deadline counts for the whole head."""
    server, _key = strict
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\n")
        cut = False
        while time.monotonic() - started < TIMEOUT + MARGIN + 2:
            time.sleep(0.5)  # the client's pace, not synchronisation
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:  # the server closed the connection
                cut = True
                break
        assert cut, "the server kept reading a head that never ends"
        assert time.monotonic() - started <= TIMEOUT + MARGIN


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(strict):
    server, _key = strict
    request = b"GET /healthz HTTP/1.1\r\nHost: pforte\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT / 2)  # the client's pace: within the idle timeout the connection is kept
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        idle_since = time.monotonic()
        assert read_until_closed(sock) == b""
        assert TIMEOUT * 0.9 <= time.monotonic() - idle_since <= TIMEOUT + MARGIN


def test_a_request_body_that_stalls_is_answered_408_after_the_write_timeout(strict):
    server, key = strict
    with connect(server) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + key["key"].encode() + b"\r\nContent-Length: 100\r\n\r\n{\"model\"")
        sent = time.monotonic()
        answer = read_until_closed(sock)
        assert time.monotonic() - sent <= TIMEOUT + MARGIN
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert json.loads(body)["error"]["code"] == "request_timeout"
    request_id = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"x-request-id:"))
    rows = wait_until(lambda: query(server, "SELECT status, error_code FROM request_logs WHERE request_id = :rid",
                                    rid=request_id), 5, "the row")
    assert (rows[0]["status"], rows[0]["error_code"]) == (408, "request_timeout")
    assert "Traceback" not in server.log_text()


def test_an_admin_form_that_stalls_is_ended_after_the_write_timeout(strict):
    """Werkzeug takes the failed read for a client that went away: a 400 page, and the connection closes."""
    server, _key = strict
    with connect(server) as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\nusername=")
        sent = time.monotonic()
        answer = read_until_closed(sock)
        assert time.monotonic() - sent <= TIMEOUT + MARGIN
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert "Traceback" not in server.log_text()


def test_a_stream_the_client_stops_reading_is_released_after_the_write_timeout(strict, fake_upstream):
    """A key with concurrency 1: the stalled stream holds the slot; after the write timeout the slot, the
    upstream connection and the row are settled, and the key's next request succeeds."""
    server, _key = strict
    key = create_key(server, "one-at-a-time", "--max-concurrent", "1")
    closed_before = requests.get(f"{fake_upstream.url}/stats", timeout=5).json()["closed_by_client"]
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content":
                       "[fake chunks=100000 chunk_bytes=4000 chunk_delay=0.001] a long answer"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + key["key"].encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    stalled = connect(server, SO_RCVBUF=4096)
    try:
        stalled.sendall(request + body)
        head = b""
        while b"\r\n\r\n" not in head:
            head += stalled.recv(1024)
        assert head.startswith(b"HTTP/1.1 200 "), head[:300]
        request_id = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                          if line.lower().startswith(b"x-request-id:"))
        stalled_at = time.monotonic()  # from here on the client reads nothing
        held = post_chat(server, key["key"], "while the stream is held")
        assert held.status_code == 429, held.text  # the slot is taken: the test would see a leak

        def next_request_passes() -> bool:
            return post_chat(server, key["key"], "after the timeout").status_code == 200

        wait_until(next_request_passes, TIMEOUT + MARGIN + 3, "the concurrency slot to be released", interval=0.2)
        assert time.monotonic() - stalled_at <= TIMEOUT + MARGIN + 3
        rows = wait_until(lambda: query(server, "SELECT status, error_code, stream FROM request_logs "
                                                "WHERE request_id = :rid", rid=request_id), 5, "the row")
        assert rows[0]["status"] == 499 and rows[0]["error_code"] == "client_disconnected" and rows[0]["stream"]
        wait_until(lambda: requests.get(f"{fake_upstream.url}/stats", timeout=5).json()["closed_by_client"]
                   > closed_before, 5, "the upstream connection to be closed")
    finally:
        stalled.close()
    assert "Traceback" not in server.log_text()


def test_connections_over_the_cap_get_a_503_in_the_openai_shape(gateway):
    server, key = gateway(env={"PFORTE_MAX_CONNECTIONS": "5", "PFORTE_RATELIMIT_PER_IP": "100000/minute"})
    holders = [connect(server) for _ in range(5)]  # open, nothing sent yet

    def probe() -> bytes:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: pforte\r\nConnection: close\r\n\r\n")
            return read_until_closed(sock)

    try:
        answer = wait_until(lambda: (seen := probe()).startswith(b"HTTP/1.1 503 ") and seen, 10, "a 503")
    finally:
        for sock in holders:
            sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    fields = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]}
    assert fields[b"retry-after"] == b"1" and fields[b"content-type"] == b"application/json"
    assert fields[b"connection"] == b"close"
    error = json.loads(body)["error"]
    assert error["type"] == "server_error" and error["code"] == "server_busy"
    assert "too many open connections" in error["message"] and "param" in error
    wait_until(lambda: requests.get(f"{server.url}/v1/models", headers=auth(key["key"]), timeout=5).status_code
               == 200, 10, "the server to take connections again")


def test_admin_pages_refuse_bodies_over_the_limit_with_a_413(gateway):
    server, key = gateway(env={"PFORTE_ADMIN_MAX_BODY_BYTES": "100000"})
    big = requests.post(f"{server.url}/login", data={"username": "x", "password": "a" * 200_000}, timeout=10)
    assert big.status_code == 413
    assert "Request too large" in big.text and "97 KiB" in big.text
    upload = requests.post(f"{server.url}/login", files={"f": ("big.bin", b"\0" * 200_000)}, timeout=10)
    assert upload.status_code == 413
    chunked = requests.post(f"{server.url}/login", data=(b"password=" + b"a" * 10_000 for _ in range(20)),
                            headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert chunked.status_code == 413 and chunked.request.headers["Transfer-Encoding"] == "chunked"
    session = requests.Session()  # a chunked form within the limit arrives whole (its CSRF token last)
    token = CSRF_FIELD.search(session.get(f"{server.url}/login", timeout=10).text).group(1)
    form = f"username=nobody&password={'p' * 50_000}&csrf_token={token}".encode()
    wrong = session.post(f"{server.url}/login", data=(form[i:i + 8192] for i in range(0, len(form), 8192)),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10,
                         allow_redirects=False)
    assert wrong.request.headers["Transfer-Encoding"] == "chunked"
    assert wrong.status_code not in (400, 413) and "expired" not in wrong.text, wrong.status_code
    small = requests.post(f"{server.url}/login", data={"username": "x", "password": "a" * 1000}, timeout=10)
    assert small.status_code != 413
    # the client API keeps its own limit (PFORTE_MAX_BODY_BYTES, 20 MiB by default) and JSON errors
    api = post_chat(server, key["key"], "b" * 200_000)
    assert api.status_code == 200
