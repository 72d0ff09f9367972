"""The connection's total time limit (DESIGN §6 upstream_timeout): a stream that keeps trickling past it ends
with one error frame; a plain answer whose body trickles past it is a 504. Each byte comes well within the
read timeout, so only the total limit can end these requests. (total-test: read 1 s, total 2 s.)"""
from __future__ import annotations

import json
import time
import uuid

from api_helpers import timed_stream, user, wait_for
from upstream_variants import total_limited_fixture  # noqa: F401

TOTAL = 2.0


def test_a_trickling_stream_ends_with_an_error_frame_at_the_total_limit(gateway, total_limited):
    marker = uuid.uuid4().hex
    closed_before = gateway.upstream_stats()["closed_by_client"]
    response, events, elapsed = timed_stream(gateway, total_limited, f"[fake chunks=40 chunk_delay=0.25] {marker}")
    assert TOTAL <= elapsed < TOTAL + 2.5
    assert b"[DONE]" not in events
    chunks = [json.loads(event) for event in events]
    assert len(chunks) >= 3 and all("choices" in chunk for chunk in chunks[:-1])  # content came through
    error = chunks[-1]["error"]
    assert error["code"] == "upstream_timeout" and error["type"] == "server_error"
    assert {"message", "type", "param", "code"} <= set(error)
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["status"] == 504 and row["error_code"] == "upstream_timeout"
    wait_for(lambda: gateway.upstream_stats()["closed_by_client"] > closed_before)  # upstream request closed


def test_a_trickling_body_past_the_total_limit_is_a_504(gateway, total_limited):
    started = time.monotonic()
    response = gateway.post("/v1/chat/completions",
                            {"model": total_limited, "messages": user("[fake trickle=0.5] hello")})
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "upstream_timeout" and error["param"] is None
    assert response.headers["x-request-id"].startswith("req_")
    assert TOTAL <= elapsed < TOTAL + 2
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["status"] == 504 and row["error_code"] == "upstream_timeout"


def test_a_trickling_body_within_the_total_limit_is_fine(gateway, total_limited):
    response = gateway.post("/v1/chat/completions",
                            {"model": total_limited, "messages": user("[fake trickle=0.05] hello")})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
