"""The connection's read timeout (seconds between bytes) inside a stream: an upstream that falls silent
for longer ends the stream with one upstream_timeout error frame, long before the total limit; pauses
shorter than it are fine. (read-test: read 1 s, total 30 s.)"""
from __future__ import annotations

import json
import uuid

from api_helpers import timed_stream, wait_for
from upstream_variants import read_limited_fixture  # noqa: F401


def stream(gateway, model: str, directive: str):
    return timed_stream(gateway, model, f"[fake {directive}] {uuid.uuid4().hex}")


def test_an_upstream_silent_past_the_read_timeout_ends_the_stream_with_an_error_frame(gateway, read_limited):
    closed_before = gateway.upstream_stats()["closed_by_client"]
    response, events, elapsed = stream(gateway, read_limited, "chunks=8 hang_after=4")
    assert 1.0 <= elapsed < 5.0  # the read timeout, not the 30-second total limit
    assert b"[DONE]" not in events
    chunks = [json.loads(event) for event in events]
    assert len(chunks) == 5 and all("choices" in chunk for chunk in chunks[:4])  # what came before passed
    assert chunks[-1]["error"]["code"] == "upstream_timeout"
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["status"] == 504 and row["error_code"] == "upstream_timeout"
    wait_for(lambda: gateway.upstream_stats()["closed_by_client"] > closed_before)  # upstream request closed


def test_pauses_shorter_than_the_read_timeout_do_not_end_the_stream(gateway, read_limited):
    response, events, elapsed = stream(gateway, read_limited, "chunks=4 chunk_delay=0.6")
    assert events[-1] == b"[DONE]" and elapsed >= 0.6 * 4
    assert all("error" not in json.loads(event) for event in events[:-1])
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["status"] == 200
