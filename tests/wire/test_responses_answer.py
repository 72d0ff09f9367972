"""Chat completions → Responses `response` objects, judged by the SDK's own types and client."""
from __future__ import annotations

import json

from support.responses_sdk import client_answering, validate_response

from app.wire.responses_answer import chat_completion_to_response, response_shell, responses_usage

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
         "prompt_tokens_details": {"cached_tokens": 8}, "completion_tokens_details": {"reasoning_tokens": 2}}


def completion(message: dict, finish: str = "stop", usage: dict | None = USAGE) -> dict:
    result = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "upstream-name",
              "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]}
    if usage is not None:
        result["usage"] = usage
    return result


def answer(message: dict, request: dict | None = None, **kwargs) -> dict:
    shell = response_shell(request or {"model": "public", "input": "x"}, model="public")
    return chat_completion_to_response(completion(message, **kwargs), shell)


def test_text_answer():
    result = answer({"content": "Hello there"})
    response = validate_response(result)
    assert response.id.startswith("resp_") and len(response.id) > 40
    assert response.object == "response" and response.status == "completed" and response.model == "public"
    assert response.output_text == "Hello there"
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert message.content[0].annotations == []
    assert response.error is None and response.incomplete_details is None
    assert result["usage"] == {"input_tokens": 20,
                               "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
                               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
                               "total_tokens": 25}


def test_tool_calls_become_function_call_items():
    response = validate_response(answer({"content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bern"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Genf"}'}},
    ]}, finish="tool_calls"))
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    first = response.output[0]
    assert first.id.startswith("fc_") and first.call_id == "call_a" and first.name == "get_weather"
    assert first.arguments == '{"city":"Bern"}' and first.status == "completed"
    assert response.output[1].call_id == "call_b" and response.output[0].id != response.output[1].id


def test_text_next_to_a_tool_call():
    response = validate_response(answer({"content": "Checking.", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}))
    assert [item.type for item in response.output] == ["message", "function_call"]


def test_output_cap_hit_is_incomplete():
    response = validate_response(answer({"content": "Half a sent"}, finish="length"))
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"


def test_content_filter_is_incomplete():
    response = validate_response(answer({"content": ""}, finish="content_filter"))
    assert response.status == "incomplete" and response.incomplete_details.reason == "content_filter"


def test_refusal_is_a_refusal_part():
    response = validate_response(answer({"content": None, "refusal": "I can't help with that."}))
    assert response.output[0].content[0].type == "refusal"
    assert response.output[0].content[0].refusal == "I can't help with that."


def test_empty_answer_is_one_empty_message():
    response = validate_response(answer({"content": None}))
    assert response.output_text == "" and len(response.output) == 1


def test_missing_usage_counts_zero_and_a_missing_total_is_the_sum():
    assert validate_response(answer({"content": "x"}, usage=None)).usage.total_tokens == 0
    assert responses_usage({"prompt_tokens": 3, "completion_tokens": 4})["total_tokens"] == 7
    assert responses_usage({"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 9}})[
        "input_tokens_details"]["cached_tokens"] == 3


def test_request_settings_are_echoed():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = {"model": "public", "input": "x", "instructions": "Be brief.", "temperature": 0.3, "top_p": 0.8,
               "max_output_tokens": 99, "metadata": {"team": "blue"}, "parallel_tool_calls": False,
               "tools": [TOOL, {"type": "web_search"}], "tool_choice": {"type": "function", "name": "get_weather"},
               "text": {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
               "reasoning": {"effort": "low", "summary": "auto"}, "user": "u-1", "prompt_cache_key": "k",
               "previous_response_id": "resp_prev"}
    result = answer({"content": "{}"}, request)
    response = validate_response(result)
    assert response.instructions == "Be brief." and response.temperature == 0.3 and response.top_p == 0.8
    assert response.max_output_tokens == 99 and response.metadata == {"team": "blue"}
    assert response.parallel_tool_calls is False
    assert [tool.name for tool in response.tools] == ["get_weather"]  # the web_search tool was not offered
    assert response.tool_choice.type == "function" and response.tool_choice.name == "get_weather"
    assert response.text.format.type == "json_schema" and response.text.format.name == "thing"
    assert response.text.format.schema_ == schema and response.text.format.strict is True
    assert response.reasoning.effort == "low" and response.reasoning.summary == "auto"
    assert response.user == "u-1" and response.prompt_cache_key == "k"
    assert response.previous_response_id == "resp_prev"


def test_defaults_when_the_request_sets_nothing():
    response = validate_response(answer({"content": "x"}))
    assert response.tools == [] and response.tool_choice == "auto" and response.parallel_tool_calls is True
    assert response.metadata == {} and response.instructions is None and response.text.format.type == "text"


def test_sdk_client_reads_the_answer():
    request = {"model": "public", "input": "Hi", "tools": [TOOL]}
    body = answer({"content": "Hi!", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}, request)
    client, sent = client_answering(json.dumps(body).encode(), "application/json")
    response = client.responses.create(model="public", input="Hi", tools=[TOOL])
    assert sent[0]["input"] == "Hi"
    assert response.output_text == "Hi!" and response.usage.input_tokens == 20
    assert response.output[1].call_id == "call_a"
