"""An unexpected exception in the gateway (DESIGN §6 "anything else"): 500 server_error internal_error with all
four keys and x-request-id, no traceback or exception text in the body (details only in the server log), and
a request-log row. Triggered with the test-only fault header (PFORTE_TESTING_FAULTS is set for this gateway)."""
from __future__ import annotations

import json

import openai
import pytest
from api_helpers import raw_post, sse_data, user, wait_for

FAULT = {"x-pforte-test-fault": "internal"}


def test_an_unexpected_exception_is_a_500_json_error(gateway):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test", "messages": user("hi")}, headers=FAULT)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == ("server_error", "internal_error", None)
    assert "Traceback" not in response.text and "injected fault" not in response.text
    assert "InjectedFault" not in response.text and ".py" not in response.text
    row = gateway.log_row(request_id)
    assert row["status"] == 500 and row["error_code"] == "internal_error" and row["model"] == "gpt-test"
    log = wait_for(lambda: request_id in gateway.server.log_text() and gateway.server.log_text())
    assert "injected fault before the answer" in log  # the details are in the server log


def test_the_sdk_sees_an_internal_server_error(gateway):
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0,
                           default_headers=FAULT)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("hi"))
    assert caught.value.status_code == 500 and caught.value.code == "internal_error"
    assert caught.value.request_id.startswith("req_")


def test_the_fault_header_does_nothing_without_the_testing_flag(gateway):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test", "messages": user("hi")},
                            headers={"x-pforte-test-fault": "unknown-kind"})
    assert response.status_code == 200


def test_an_unexpected_exception_mid_stream_is_one_error_frame(gateway):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("[fake chunk_delay=0.05] hi")},
                              gateway.key, headers={"x-pforte-test-fault": "stream"})
    assert response.status == 200
    body = response.read()  # ends: the body is closed after the error frame
    conn.close()
    events = sse_data(body)
    assert b"[DONE]" not in events and 1 <= len(events) <= 4  # chunks encoded before the failure, then
    assert all("choices" in json.loads(event) for event in events[:-1])  # the error frame
    error = json.loads(events[-1])["error"]
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert b"Traceback" not in body and b"injected" not in body
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["status"] == 500 and row["error_code"] == "internal_error" and row["stream"] in (True, 1)
