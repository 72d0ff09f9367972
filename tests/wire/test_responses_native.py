"""A Responses request for an upstream that offers the Responses API itself (app/wire/responses_native.py)."""
from __future__ import annotations

import copy

import pytest

from app.api_errors import ApiError
from app.wire.responses_native import native_request

SHELL = {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}


def test_only_model_and_store_change():
    body = {"model": "public", "input": [{"role": "user", "content": "hi"}], "store": True, "stream": True,
            "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"}, "max_output_tokens": 9,
            "tools": [SHELL], "tool_choice": {"type": "function", "name": "shell"}, "metadata": {"a": "b"}}
    original = copy.deepcopy(body)
    request = native_request(body, model="upstream-name")
    assert request.body == {**original, "model": "upstream-name", "store": False}
    assert request.dropped_tools == [] and body == original  # the client's body is left as it was


def test_hosted_tools_are_left_out_and_a_choice_of_one_with_them():
    body = {"model": "m", "input": "x", "tools": [{"type": "web_search"}, SHELL, {"type": "mcp", "server_label": "d"}],
            "tool_choice": {"type": "web_search"}}
    request = native_request(body, model="m")
    assert request.body["tools"] == [SHELL] and "tool_choice" not in request.body
    assert request.dropped_tools == ["web_search", "mcp:d"]
    only_hosted = native_request({"model": "m", "input": "x", "tools": [{"type": "web_search"}],
                                  "tool_choice": "required"}, model="m")
    assert "tools" not in only_hosted.body and "tool_choice" not in only_hosted.body
    kept_choice = native_request({**body, "tool_choice": "auto"}, model="m")
    assert kept_choice.body["tool_choice"] == "auto"


def test_a_malformed_tool_is_refused():
    with pytest.raises(ApiError) as caught:
        native_request({"model": "m", "input": "x", "tools": [{"name": "no type"}]}, model="m")
    assert caught.value.status == 400 and caught.value.param == "tools[0]"


def test_the_stored_conversation_goes_ahead_of_the_input_without_ids():
    earlier = [
        {"type": "message", "id": "msg_1", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{}"},
    ]
    body = {"model": "m", "input": "two", "previous_response_id": "resp_1"}
    request = native_request(body, model="m", earlier=earlier)
    assert "previous_response_id" not in request.body
    assert request.body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}"},
        {"role": "user", "content": "two"}]
