"""Non-streamed responses and error bodies OpenAI ⇄ Anthropic, validated with the SDKs' own types."""

from __future__ import annotations

import anthropic.types
import openai.types.chat
import pytest

from app.wire.anthropic_to_openai import anthropic_response_to_openai
from app.wire.openai_to_anthropic import openai_response_to_anthropic
from app.wire.shared import anthropic_error_body


def anthropic_message(content, stop_reason="end_turn", usage=None):
    return {
        "id": "msg_01abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


def openai_completion(message, finish_reason="stop", usage=None):
    return {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-up",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


# --------------------------------------------------------------------------- Anthropic → OpenAI


def test_text_message_becomes_chat_completion_with_full_usage():
    result = anthropic_response_to_openai(
        anthropic_message([{"type": "text", "text": "Guten "}, {"type": "text", "text": "Tag"}]),
        model="public",
    )
    parsed = openai.types.chat.ChatCompletion.model_validate(result, strict=False)
    assert parsed.choices[0].message.content == "Guten Tag"
    assert parsed.choices[0].message.tool_calls is None
    assert "tool_calls" not in result["choices"][0]["message"]
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.model == "public"
    assert result["object"] == "chat.completion"
    assert result["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def test_cached_input_tokens_count_into_prompt_tokens():
    usage = {
        "input_tokens": 4,
        "output_tokens": 2,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 30,
    }
    result = anthropic_response_to_openai(anthropic_message([{"type": "text", "text": "x"}], usage=usage))
    assert result["usage"]["prompt_tokens"] == 134
    assert result["usage"]["prompt_tokens_details"]["cached_tokens"] == 100
    assert result["usage"]["total_tokens"] == 136


def test_tool_use_becomes_tool_calls_with_null_content():
    result = anthropic_response_to_openai(
        anthropic_message(
            [
                {"type": "thinking", "thinking": "…", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Köln"}},
            ],
            "tool_use",
        )
    )
    parsed = openai.types.chat.ChatCompletion.model_validate(result)
    message = parsed.choices[0].message
    assert message.content is None
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].id == "toolu_1"
    assert message.tool_calls[0].function.name == "weather"
    assert message.tool_calls[0].function.arguments == '{"city": "Köln"}'


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish):
    result = anthropic_response_to_openai(anthropic_message([{"type": "text", "text": "x"}], stop_reason))
    assert result["choices"][0]["finish_reason"] == finish


# --------------------------------------------------------------------------- OpenAI → Anthropic


def test_chat_completion_becomes_anthropic_message():
    result = openai_response_to_anthropic(
        openai_completion({"role": "assistant", "content": "Hallo"}), model="public"
    )
    parsed = anthropic.types.Message.model_validate(result)
    assert parsed.id.startswith("msg_")
    assert parsed.model == "public"
    assert [block.type for block in parsed.content] == ["text"]
    assert parsed.content[0].text == "Hallo"
    assert parsed.stop_reason == "end_turn"
    assert parsed.usage.input_tokens == 12
    assert parsed.usage.output_tokens == 3


def test_cached_prompt_tokens_move_to_cache_read():
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 3,
        "total_tokens": 123,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    result = openai_response_to_anthropic(
        openai_completion({"role": "assistant", "content": "x"}, usage=usage)
    )
    assert result["usage"] == {
        "input_tokens": 20,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
    }


def test_tool_calls_become_tool_use_blocks():
    message = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Bonn"}'},
            },
            {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "not json"}},
        ],
    }
    result = openai_response_to_anthropic(openai_completion(message, "tool_calls"))
    parsed = anthropic.types.Message.model_validate(result)
    assert parsed.stop_reason == "tool_use"
    assert [block.type for block in parsed.content] == ["text", "tool_use", "tool_use"]
    assert parsed.content[1].id == "call_a"
    assert parsed.content[1].input == {"city": "Bonn"}
    assert parsed.content[2].input == {}  # a model's broken JSON does not fail the whole answer


def test_tool_calls_with_finish_reason_stop_still_say_tool_use():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert openai_response_to_anthropic(openai_completion(message, "stop"))["stop_reason"] == "tool_use"
    assert openai_response_to_anthropic(openai_completion(message, "length"))["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish, stop_reason):
    result = openai_response_to_anthropic(openai_completion({"role": "assistant", "content": "x"}, finish))
    assert result["stop_reason"] == stop_reason


def test_empty_and_refusal_answers():
    empty = openai_response_to_anthropic(openai_completion({"role": "assistant", "content": ""}))
    assert empty["content"] == []
    refusal = openai_response_to_anthropic(
        openai_completion(
            {"role": "assistant", "content": None, "refusal": "I can't help."}, "content_filter"
        )
    )
    assert refusal["content"] == [{"type": "text", "text": "I can't help."}]
    assert refusal["stop_reason"] == "refusal"


def test_missing_usage_gives_zero_usage():
    response = openai_completion({"role": "assistant", "content": "x"})
    del response["usage"]
    assert openai_response_to_anthropic(response)["usage"]["input_tokens"] == 0


# --------------------------------------------------------------------------- Errors


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
        (599, "api_error"),
    ],
)
def test_anthropic_error_types_by_status(status, error_type):
    body = anthropic_error_body(status, "Nope", request_id="req_1")
    assert body == {"type": "error", "error": {"type": error_type, "message": "Nope"}, "request_id": "req_1"}
    if error_type != "request_too_large":  # documented by Anthropic, missing from the SDK's ErrorType union
        anthropic.types.ErrorResponse.model_validate(body)
