"""Fault injection, the upstream: it refuses connections, hangs, dies in the middle of a stream, answers
garbage. Each fault gets its documented error (docs/architecture.md, Errors), the process keeps serving,
every request is settled with its row and nothing stays reserved, and it recovers once the upstream is back.
"""
from __future__ import annotations

import json

import pytest
import requests
from support.processes import FakeUpstream, free_port
from support.proof import every_request_settled, proof_gateway
from support.waiting import wait_until


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with proof_gateway(tmp_path_factory.mktemp("upstream-faults"), key_options=("--quota", "50")) as gateway:
        cli = gateway.server.setup_cli
        gateway.dead_port = free_port()
        cli("connections", "add", "--name", "flaky", "--kind", "openai", "--base-url",
            f"http://127.0.0.1:{gateway.dead_port}/v1", "--connect-timeout", "1", "--read-timeout", "2",
            "--timeout", "10")
        cli("models", "add", "--id", "flaky-test", "--connection", "flaky", "--upstream-model", "gpt-fake",
            "--input-price", "1", "--output-price", "2")
        cli("connections", "add", "--name", "slow", "--kind", "openai", "--base-url", f"{gateway.upstream.url}/v1",
            "--read-timeout", "1", "--timeout", "5")
        cli("models", "add", "--id", "slow-test", "--connection", "slow", "--upstream-model", "gpt-fake",
            "--input-price", "1", "--output-price", "2")
        wait_until(lambda: gateway.chat(model="slow-test").status_code == 200, 10, "the slow-test model")
        yield gateway


@pytest.fixture(scope="module")
def answered(gateway):
    with every_request_settled(gateway) as ids:
        yield ids


def _error(answer: requests.Response, status: int, code: str, answered: list) -> None:
    answered.append(answer.headers["x-request-id"])
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code, answer.text


def _still_serving(gateway, answered) -> None:
    answer = gateway.chat("and now?")
    assert answer.status_code == 200, answer.text
    answered.append(answer.headers["x-request-id"])


def _stream(gateway, content: str, model: str = "gpt-test") -> tuple[requests.Response, list[dict]]:
    answer = gateway.post("/v1/chat/completions", {"model": model, "stream": True,
                                                   "messages": [{"role": "user", "content": content}]}, stream=True)
    events = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith(b"data: {")]
    return answer, events


def test_an_upstream_that_refuses_connections_is_503_and_recovers_when_it_listens(gateway, answered):
    for _ in range(3):
        _error(gateway.chat(model="flaky-test"), 503, "upstream_unavailable", answered)
    _still_serving(gateway, answered)
    upstream = FakeUpstream(gateway.dead_port)
    upstream.start()
    try:
        answer = gateway.chat(model="flaky-test")
        answered.append(answer.headers["x-request-id"])
        assert answer.status_code == 200, answer.text
    finally:
        upstream.stop()
    _error(gateway.chat(model="flaky-test"), 503, "upstream_unavailable", answered)


def test_an_upstream_that_hangs_is_504(gateway, answered):
    _error(gateway.chat("[fake hang=1]", model="slow-test"), 504, "upstream_timeout", answered)
    _error(gateway.chat("[fake first_byte_delay=3]", model="slow-test"), 504, "upstream_timeout", answered)
    _still_serving(gateway, answered)


def test_a_stream_whose_upstream_hangs_ends_with_an_error_event(gateway, answered):
    answer, events = _stream(gateway, "[fake hang_after=2]", model="slow-test")
    answered.append(answer.headers["x-request-id"])
    assert answer.status_code == 200
    assert events[-1]["error"]["code"] == "upstream_timeout", events[-1]
    _still_serving(gateway, answered)


def test_an_upstream_that_dies_mid_stream_ends_the_stream_with_an_error_and_books_what_was_sent(gateway, answered):
    answer, events = _stream(gateway, "[fake die_after=3]")
    request_id = answer.headers["x-request-id"]
    answered.append(request_id)
    assert answer.status_code == 200
    assert "error" in events[-1], events[-1]
    assert sum(1 for event in events if event.get("choices")) >= 3
    wait_until(lambda: gateway.log_rows([request_id]), 10, "the row of the broken stream")
    row = gateway.query("SELECT status, output_tokens, credits_micro FROM request_logs WHERE request_id = :r",
                        r=request_id)[0]
    assert row["status"] >= 500 and row["output_tokens"] > 0 and row["credits_micro"] > 0, row
    _still_serving(gateway, answered)


def test_an_upstream_that_answers_garbage_is_502(gateway, answered):
    _error(gateway.chat("[fake malformed=1]"), 502, "upstream_error", answered)
    _error(gateway.chat("[fake cut_body=1]"), 502, "upstream_error", answered)
    answer, events = _stream(gateway, "[fake malformed=1]")
    answered.append(answer.headers["x-request-id"])
    assert answer.status_code == 200 and events[-1]["error"]["code"] == "upstream_error", events[-1:]
    _still_serving(gateway, answered)


def test_an_upstream_error_status_is_relayed_as_documented(gateway, answered):
    _error(gateway.chat("[fake status=500]"), 502, "upstream_error", answered)
    _error(gateway.chat("[fake status=503]"), 503, "upstream_unavailable", answered)
    _still_serving(gateway, answered)
