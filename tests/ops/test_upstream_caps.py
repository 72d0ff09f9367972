"""Upstream answers are bounded: a JSON body, one SSE event and a gzip body's inflated size each have a cap
(PFORTE_UPSTREAM_MAX_BODY_BYTES, PFORTE_UPSTREAM_MAX_EVENT_BYTES, PFORTE_UPSTREAM_MAX_INFLATED_BYTES). An
upstream that sends more gets 502 upstream_error (in a stream: the error event), the request is settled,
and the server keeps serving. The fake upstream's `pad=N` and `gzip=1` modes send too much."""
from __future__ import annotations

import json

from support.opskit import post_chat, query, stream_chat
from support.waiting import wait_until

CAPS = {"PFORTE_UPSTREAM_MAX_BODY_BYTES": "200000", "PFORTE_UPSTREAM_MAX_EVENT_BYTES": "100000",
        "PFORTE_UPSTREAM_MAX_INFLATED_BYTES": "300000"}


def settled_row(server, request_id: str) -> dict:
    def row():
        rows = query(server, "SELECT status, error_code FROM request_logs WHERE request_id = :rid", rid=request_id)
        return rows[0] if rows else None

    return wait_until(row, 20, f"the request-log row of {request_id}")


def assert_too_large(server, answer) -> None:
    assert answer.status_code == 502, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == "upstream_error" and error["type"] == "server_error"
    assert "larger than" in error["message"]
    row = settled_row(server, answer.headers["x-request-id"])
    assert (row["status"], row["error_code"]) == (502, "upstream_error")


def test_answers_within_the_caps_pass(gateway):
    server, key_info = gateway(env=CAPS)
    key = key_info["key"]
    plain = post_chat(server, key, "[fake pad=150000] Hallo")
    assert plain.status_code == 200 and len(plain.content) > 150000
    inflated = post_chat(server, key, "[fake gzip=1 pad=1000] Hallo")
    assert inflated.status_code == 200
    assert inflated.json()["choices"][0]["message"]["content"].endswith("x" * 1000)
    stream = stream_chat(server, key, "[fake pad=90000] Hallo")
    body = b"".join(stream.iter_content(None))
    assert stream.status_code == 200 and b"x" * 90000 in body and body.endswith(b"data: [DONE]\n\n")


def test_a_json_body_over_the_cap_is_a_502(gateway):
    server, key_info = gateway(env=CAPS)
    assert_too_large(server, post_chat(server, key_info["key"], "[fake pad=250000] Hallo"))
    assert post_chat(server, key_info["key"], "Hallo").status_code == 200  # still serving


def test_a_gzip_body_that_inflates_past_the_cap_is_a_502(gateway):
    """250 kB of padding compress to a few hundred bytes; inflated they pass the body cap's 200 kB
    but stop at the inflation cap, whose own 300 kB is measured across the whole answer."""
    server, key_info = gateway(env={**CAPS, "PFORTE_UPSTREAM_MAX_BODY_BYTES": "10000000"})
    answer = post_chat(server, key_info["key"], "[fake gzip=1 pad=400000] Hallo")
    assert_too_large(server, answer)


def test_a_stream_event_over_the_cap_ends_the_stream_with_an_error_event(gateway):
    server, key_info = gateway(env=CAPS)
    stream = stream_chat(server, key_info["key"], "[fake pad=150000] Hallo")
    assert stream.status_code == 200
    body = b"".join(stream.iter_content(None))
    events = [block[6:] for block in body.split(b"\n\n") if block.startswith(b"data: ")]
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_error" and "larger than" in error["message"]
    assert b"[DONE]" not in body
    row = settled_row(server, stream.headers["x-request-id"])
    assert (row["status"], row["error_code"]) == (502, "upstream_error")
