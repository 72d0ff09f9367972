"""Revoking or disabling a key ends its streams in progress within about a second, in every process: a
stream on host b ends with an error event that says so when the key is revoked through the CLI or
disabled on host a's admin page, and the stream's request-log row is settled."""
from __future__ import annotations

import json
import threading
import time

import requests
from support.opskit import MODEL, admin_session, auth, create_key, query
from support.waiting import wait_until
from support.web import CSRF_FIELD

SLOW = "[fake chunks=60 chunk_delay=0.5] Erzähl mir etwas"  # a 30-second stream


class OpenStream:
    """A streaming request read in a thread: the events so far and when the body ended."""

    def __init__(self, server, key: str):
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": SLOW}]}
        self.response = requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body,
                                      stream=True, timeout=60)
        assert self.response.status_code == 200
        self.raw = b""
        self.ended_at: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for piece in self.response.iter_content(None):
                self.raw += piece
        except (requests.RequestException, AttributeError, ValueError):  # closed by the test itself
            pass
        self.ended_at = time.monotonic()

    def events(self) -> list[bytes]:
        return [block[6:] for block in self.raw.split(b"\n\n") if block.startswith(b"data: ")]

    def wait_ended(self, timeout: float = 10.0) -> float:
        return wait_until(lambda: self.ended_at, timeout, "the stream to end", interval=0.02)


def assert_ended_by(cluster, stream: OpenStream, changed_at: float, word: str) -> None:
    ended = stream.wait_ended()
    assert ended - changed_at < 1.2, f"the stream went on for {ended - changed_at:.2f} s after the change"
    error = json.loads(stream.events()[-1])["error"]
    assert error["code"] == "invalid_api_key" and word in error["message"]
    assert b"[DONE]" not in stream.raw
    request_id = stream.response.headers["x-request-id"]

    def row():
        rows = query(cluster.database_url, "SELECT status, error_code, output_tokens FROM request_logs "
                                           "WHERE request_id = :rid", rid=request_id)
        return rows[0] if rows else None

    settled = wait_until(row, 10, "the stream's request-log row")
    assert (settled["status"], settled["error_code"]) == (401, "invalid_api_key")
    assert settled["output_tokens"] > 0, "what was streamed is booked"


def test_a_key_revoked_by_the_cli_ends_its_streams_on_both_processes(cluster):
    key = create_key(cluster.a, "stream-revoke")
    streams = [OpenStream(cluster.b, key["key"]), OpenStream(cluster.a, key["key"])]
    wait_until(lambda: all(len(s.events()) >= 3 for s in streams), 10, "both streams under way")
    cluster.a.cli("keys", "revoke", key["id"])
    revoked_at = time.monotonic()
    for stream in streams:
        assert_ended_by(cluster, stream, revoked_at, "revoked")


def test_a_key_disabled_on_the_other_process_ends_its_stream(cluster):
    key = create_key(cluster.a, "stream-disable")
    other = create_key(cluster.a, "stream-bystander")
    stream = OpenStream(cluster.b, key["key"])
    bystander = OpenStream(cluster.b, other["key"])
    wait_until(lambda: len(stream.events()) >= 3, 10, "the stream under way")
    admin = admin_session(cluster.a)
    page = f"{cluster.a.url}/keys"
    token = CSRF_FIELD.search(admin.get(page, timeout=10).text).group(1)
    answer = admin.post(f"{cluster.a.url}/keys/{key['id']}/disable", data={"csrf_token": token},
                        allow_redirects=False, timeout=10)
    disabled_at = time.monotonic()
    assert answer.status_code in (200, 302, 303), answer.text[:300]
    assert_ended_by(cluster, stream, disabled_at, "disabled")
    assert bystander.ended_at is None, "another key's stream goes on"
    bystander.response.close()
