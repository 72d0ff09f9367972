"""Upstream answers are bounded: a JSON body, one SSE event and a gzip body's inflated size each have a cap
(PFORTE_UPSTREAM_MAX_BODY_BYTES, PFORTE_UPSTREAM_MAX_EVENT_BYTES, PFORTE_UPSTREAM_MAX_INFLATED_BYTES). An
upstream that sends more gets 502 upstream_error (in a stream: the error event), the request is settled,
and the server keeps serving. The fake upstream's `pad=N` and `gzip=1` modes send too much."""
from __future__ import annotations

import json

import requests
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


def test_an_anthropic_stream_event_over_the_cap_ends_with_the_anthropic_error_event(gateway, fake_upstream):
    """The fake Anthropic upstream echoes the prompt word by word: one 150 kB word is one 150 kB event."""
    server, key_info = gateway(env={**CAPS, "FAKE_UPSTREAM_KEY": "sk-upstream"})
    server.setup_cli("connections", "add", "--name", "fake-claude", "--kind", "anthropic", "--base-url",
                     fake_upstream.url, "--api-key-env", "FAKE_UPSTREAM_KEY")
    server.setup_cli("models", "add", "--id", "claude-capped", "--connection", "fake-claude",
                     "--upstream-model", "claude-fake")
    body = {"model": "claude-capped", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "eins zwei " + "x" * 150000}]}

    def stream():
        answer = requests.post(f"{server.url}/v1/messages", json=body, timeout=30,
                               headers={"x-api-key": key_info["key"], "anthropic-version": "2023-06-01"})
        return answer if answer.status_code != 404 else None  # the new model is served within a second

    answer = wait_until(stream, 10, "the new model")
    assert answer.status_code == 200, answer.text[:300]
    blocks = [block for block in answer.text.split("\n\n") if block.strip()]
    assert blocks[-1].startswith("event: error"), blocks[-1][:200]
    error = json.loads(blocks[-1].split("data: ", 1)[1])
    assert error["type"] == "error" and "larger than" in error["error"]["message"]
    assert any("eins" in block for block in blocks), "the events before the big one were passed on"
    row = settled_row(server, answer.headers["x-request-id"])
    assert (row["status"], row["error_code"]) == (502, "upstream_error")
