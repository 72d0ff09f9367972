"""Small helpers shared by the API tests: messages, raw SSE reading, polling."""
from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from support.waiting import wait_until


def user(content) -> list[dict]:
    return [{"role": "user", "content": content}]


wait_for = wait_until  # the API tests' name for the one poll-until helper of the suite


def upstream_messages(gateway) -> list:
    """The chat messages of the last request the fake upstream received."""
    return gateway.last_upstream_request()["json"]["messages"]


def execute(gateway, sql: str, **params) -> None:
    """Run one write statement on the live gateway's database (e.g. to move a row's clock back)."""
    engine = create_engine(gateway.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def raw_post(base_url: str, path: str, body: dict, key: str, headers: dict | None = None):
    """POST with http.client; returns (connection, response) with the body unread, for byte-exact checks."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})})
    return conn, conn.getresponse()


def timed_stream(gateway, model: str, content: str):
    """A streamed chat request read to its end with raw HTTP: (response, data payloads, seconds taken)."""
    started = time.monotonic()
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": model, "stream": True, "messages": user(content)}, gateway.key)
    assert response.status == 200
    body = response.read()
    conn.close()
    return response, sse_data(body), time.monotonic() - started


def sse_data(raw: bytes) -> list[bytes]:
    """The data payloads of an SSE body (comments skipped)."""
    events = []
    for block in raw.split(b"\n\n"):
        lines = [line for line in block.split(b"\n") if line and not line.startswith(b":")]
        for line in lines:
            assert line.startswith(b"data: "), line
            events.append(line[6:])
    return events
