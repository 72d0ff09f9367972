"""POST /v1/responses on the pipeline of chat: scopes, IP and model rules, limits and the budget (the
reservation for max_output_tokens, and never more asked of the upstream); upstream errors before and
during a stream; tools the upstream cannot run, left out and named, with the request Codex CLI sends."""
from __future__ import annotations

import json

import openai
import pytest
from api_helpers import raw_post, wait_for
from support.responses_sdk import frames, validate_response

BODY = {"model": "gpt-test", "input": "hi"}


def assert_error(response, status: int, type_: str, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (type_, code)
    return error


def upstream_chat_requests(gateway) -> int:
    return gateway.upstream_stats()["by_path"].get("/v1/chat/completions", 0)


def test_missing_and_unknown_keys_are_401(gateway):
    assert_error(gateway.post("/v1/responses", BODY, key="sk-nope"), 401, "invalid_request_error",
                 "invalid_api_key")


@pytest.mark.parametrize("options, code", [
    (("--scope", "read"), "scope_not_allowed"),
    (("--models", "demo"), "model_not_allowed"),
    (("--allow-ip", "192.0.2.0/24"), "ip_not_allowed"),
])
def test_key_rules_are_403(gateway, options, code):
    key = gateway.create_key(f"responses-{code}", *options)["key"]
    before = upstream_chat_requests(gateway)
    response = gateway.post("/v1/responses", BODY, key=key)
    assert_error(response, 403, "permission_error", code)
    assert upstream_chat_requests(gateway) == before
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["endpoint"] == "responses" and (row["status"], row["error_code"]) == (403, code)


def test_the_llm_scope_may_call_responses(gateway):
    key = gateway.create_key("responses-llm", "--scope", "llm")["key"]
    assert gateway.post("/v1/responses", BODY, key=key).status_code == 200


def test_used_up_request_limit_is_429(gateway):
    key = gateway.create_key("responses-monthly", "--monthly-requests", "1")["key"]
    assert gateway.post("/v1/responses", BODY, key=key).status_code == 200
    client = gateway.client(key=key)
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="gpt-test", input="again")
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_used_up_quota_is_402(gateway):
    key = gateway.create_key("responses-broke", "--quota", "0")["key"]
    before = upstream_chat_requests(gateway)
    response = gateway.post("/v1/responses", {**BODY, "stream": True}, key=key)
    assert_error(response, 402, "insufficient_quota", "insufficient_quota")
    assert response.headers["x-should-retry"] == "false"
    assert upstream_chat_requests(gateway) == before


def test_budget_reservation_caps_what_goes_upstream(gateway):
    """With a quota the reservation assumes max_output_tokens (the model's cap when the client sets none),
    and the upstream is never asked for more output than that."""
    key = gateway.create_key("responses-budget", "--quota", "5")["key"]
    client = gateway.client(key=key)
    response = client.responses.create(model="gpt-test", input="hi")
    assert response.max_output_tokens == 4096  # the model's cap, reserved and sent
    assert gateway.last_upstream_request()["json"]["max_tokens"] == 4096
    client.responses.create(model="gpt-test", input="hi", max_output_tokens=50)
    sent = gateway.last_upstream_request()["json"]
    assert sent["max_tokens"] == 50 and "max_output_tokens" not in sent
    with client.responses.stream(model="gpt-test", input="hi") as stream:
        assert stream.get_final_response().max_output_tokens == 4096
    assert gateway.last_upstream_request()["json"]["max_tokens"] == 4096


@pytest.mark.parametrize("directive, status, code", [
    ("status=500", 502, "upstream_error"),
    ("status=503", 503, "upstream_unavailable"),
    ("status=429", 429, "rate_limit_exceeded"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failure_before_the_answer_is_a_json_error(gateway, directive, status, code, stream):
    response = gateway.post("/v1/responses", {**BODY, "input": f"[fake {directive}] hi", "stream": stream})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["endpoint"] == "responses" and row["status"] == status


def read_stream(gateway, body: dict, headers: dict | None = None):
    conn, response = raw_post(gateway.url, "/v1/responses", {**body, "stream": True}, gateway.key, headers)
    assert response.status == 200
    data = response.read()
    conn.close()
    return response, data


def test_upstream_error_mid_stream_is_response_failed(gateway):
    response, data = read_stream(gateway, {**BODY, "input": "[fake error_after=4] hi"})
    events = frames(data)
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-1] == "response.failed" and "response.completed" not in names
    failed = events[-1][1]["response"]
    validate_response(failed)
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["error"]["message"] and failed["output"][0]["status"] == "incomplete"
    assert failed["output"][0]["content"][0]["text"] == "This is the"  # the text before the failure
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (502, "upstream_error") and row["endpoint"] == "responses"


def test_connection_reset_mid_stream_is_response_failed(gateway):
    _response, data = read_stream(gateway, {**BODY, "input": "[fake die_after=3] hi"})
    assert frames(data)[-1][0] == "response.failed"


def test_internal_error_mid_stream_is_response_failed(gateway):
    response, data = read_stream(gateway, {**BODY, "input": "[fake chunk_delay=0.05] hi"},
                                 headers={"x-pforte-test-fault": "stream"})
    events = frames(data)
    assert events[-1][0] == "response.failed"
    error = events[-1][1]["response"]["error"]
    assert error["code"] == "server_error" and "injected" not in error["message"]
    assert b"Traceback" not in data
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (500, "internal_error")


def test_the_sdk_stream_ends_with_the_failed_event(client):
    with client.responses.stream(model="gpt-test", input="[fake error_after=3] hi") as stream:
        last = list(stream)[-1]
    assert last.type == "response.failed" and last.response.error.code == "server_error"


CODEX_SHELL = {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
               "parameters": {"type": "object", "properties": {"command": {"type": "array",
                                                                           "items": {"type": "string"}}},
                              "required": ["command"]}}


def codex_request(model: str) -> dict:
    """What Codex CLI sends on every turn: hosted and namespace tools next to its function tools, encrypted
    reasoning asked for, a reasoning summary, store off, developer items with ids."""
    return {
        "model": model, "instructions": "You are a coding agent.", "stream": True, "store": False,
        "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"}, "tool_choice": "auto",
        "parallel_tool_calls": False, "prompt_cache_key": "0199a-session",
        "tools": [CODEX_SHELL, {"type": "web_search"},
                  {"type": "namespace", "name": "mcp__docs", "description": "MCP tools", "tools": []}],
        "input": [
            {"type": "message", "id": "msg_dev1", "role": "developer",
             "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
            {"type": "message", "id": "msg_env1", "role": "user",
             "content": [{"type": "input_text", "text": "<environment_context>cwd=/w</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]},
        ],
    }


@pytest.mark.parametrize("model", ["gpt-test", "demo"])
def test_codex_request_gets_its_tool_call_and_the_dropped_tools_named(gateway, model):
    response, data = read_stream(gateway, codex_request(model), headers={
        "accept-encoding": "zstd,gzip", "originator": "codex_cli_rs", "Accept": "text/event-stream"})
    assert response.getheader("x-pforte-dropped-tools") == "web_search, namespace:mcp__docs"
    assert response.getheader("Content-Encoding") is None
    assert "x-pforte-dropped-tools" in response.getheader("Access-Control-Expose-Headers")
    events = frames(data)
    assert events[-1][0] == "response.completed"
    final = events[-1][1]["response"]
    validate_response(final)
    call = final["output"][0]
    assert call["type"] == "function_call" and call["name"] == "shell"
    assert [tool["name"] for tool in final["tools"]] == ["shell"]
    if model == "gpt-test":
        sent = gateway.last_upstream_request()["json"]
        assert [tool["function"]["name"] for tool in sent["tools"]] == ["shell"]
        assert sent["messages"][:2] == [{"role": "system", "content": "You are a coding agent."},
                                        {"role": "system", "content": "<permissions>workspace-write</permissions>"}]
        for field in ("store", "include", "reasoning", "prompt_cache_key", "input", "instructions"):
            assert field not in sent
    history = codex_request(model)
    history["input"] += [{**call, "id": call["id"]},
                         {"type": "function_call_output", "call_id": call["call_id"], "output": "README.md"}]
    _response, data = read_stream(gateway, history)
    final = frames(data)[-1][1]["response"]
    assert final["status"] == "completed" and final["output"][0]["type"] == "message"


def test_dropped_tools_header_on_a_plain_answer(gateway, client):
    raw = client.responses.with_raw_response.create(
        model="demo", input="hi", tools=[{"type": "web_search"}, {"type": "code_interpreter",
                                                                  "container": {"type": "auto"}}])
    assert raw.headers["x-pforte-dropped-tools"] == "web_search, code_interpreter"
    assert raw.parse().tools == []


def test_accept_encoding_zstd_gets_an_uncompressed_json_answer(gateway):
    response = gateway.post("/v1/responses", BODY, headers={"Accept-Encoding": "zstd,gzip"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert json.loads(response.content)["status"] == "completed"
