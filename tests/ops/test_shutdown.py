"""Graceful shutdown of a real `pforte serve`: SIGTERM stops accepting, open streams finish (or are cut
after the grace period) and are settled, idle keep-alive connections do not hold the exit up."""
from __future__ import annotations

import signal
import socket
import time

import requests
from support.opskit import query, stream_chat
from support.waiting import wait_until


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def data_lines(response: requests.Response) -> list[bytes]:
    lines = []
    try:
        for line in response.iter_lines():
            if line.startswith(b"data: "):
                lines.append(line)
    except requests.exceptions.RequestException:
        pass  # the server cut the stream
    return lines


def settled_row(server, request_id: str) -> dict:
    rows = query(server, "SELECT status, stream, output_tokens, credits_micro, key_id FROM request_logs "
                         "WHERE request_id = :rid", rid=request_id)
    assert len(rows) == 1, f"expected one request-log row for {request_id}, found {rows}"
    return rows[0]


def test_sigterm_lets_an_open_stream_finish_then_exits(gateway):
    server, key = gateway(env={"PFORTE_SHUTDOWN_GRACE_SECONDS": "30"})
    response = stream_chat(server, key["key"], "[fake chunks=12 chunk_delay=0.25] Wie spät ist es?")
    assert response.status_code == 200
    lines = response.iter_lines()
    first = next(line for line in lines if line.startswith(b"data: "))
    assert first != b"data: [DONE]"

    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: refuses_connections(server.port), 5, "the listening socket to close")
    assert server.process.poll() is None, "the server must wait for the open stream"

    rest = data_lines(response)
    assert rest[-1] == b"data: [DONE]", "the stream must run to its end"
    assert server.process.wait(timeout=30) == 0

    row = settled_row(server, response.headers["x-request-id"])
    assert row["status"] == 200 and row["stream"]
    assert row["output_tokens"] > 0 and row["credits_micro"] > 0
    used = query(server, "SELECT used_micro FROM api_keys WHERE id = :id", id=row["key_id"])[0]["used_micro"]
    assert used == row["credits_micro"]


def test_streams_longer_than_the_grace_period_are_cut_and_still_settled(gateway):
    server, key = gateway(env={"PFORTE_SHUTDOWN_GRACE_SECONDS": "1"})
    response = stream_chat(server, key["key"], "[fake chunks=200 chunk_delay=0.1] Erzähl mir alles.")
    lines = response.iter_lines()
    next(line for line in lines if line.startswith(b"data: "))

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    assert time.monotonic() - started < 10, "exit soon after the grace period"
    rest = data_lines(response)
    assert b"data: [DONE]" not in rest, "a 20-second stream cannot have finished"

    row = settled_row(server, response.headers["x-request-id"])
    assert row["output_tokens"] > 0 and row["credits_micro"] > 0, "the part that was sent is paid for"


def test_a_second_signal_cancels_at_once(gateway):
    server, key = gateway(env={"PFORTE_SHUTDOWN_GRACE_SECONDS": "60"})
    response = stream_chat(server, key["key"], "[fake chunks=300 chunk_delay=0.1] Noch einmal.")
    next(line for line in response.iter_lines() if line.startswith(b"data: "))
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: refuses_connections(server.port), 5, "the listening socket to close")
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    settled_row(server, response.headers["x-request-id"])


def test_idle_keep_alive_connections_do_not_delay_the_exit(live_server_factory):
    server = live_server_factory(env={"PFORTE_SHUTDOWN_GRACE_SECONDS": "60"})
    session = requests.Session()
    assert session.get(f"{server.url}/healthz", timeout=5).status_code == 200  # connection stays open
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    assert time.monotonic() - started < 5
    session.close()
