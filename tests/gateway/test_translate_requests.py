"""Request translation OpenAI ⇄ Anthropic (compat.md §6 translation table)."""

from __future__ import annotations

import pytest

from app.wire.anthropic_to_openai import anthropic_request_to_openai
from app.wire.openai_to_anthropic import openai_request_to_anthropic
from app.wire.shared import TranslationError

PNG = "iVBORw0KGgo="


def to_anthropic(**body):
    return openai_request_to_anthropic({"model": "claude-x", **body}, default_max_tokens=1000)


# --------------------------------------------------------------------------- OpenAI → Anthropic


def test_plain_user_message_and_default_max_tokens():
    result = to_anthropic(messages=[{"role": "user", "content": "Hallo"}])
    assert result == {
        "model": "claude-x",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Hallo"}],
    }


def test_system_and_developer_messages_are_joined_into_top_level_system():
    result = to_anthropic(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in German."}]},
            {"role": "user", "content": "Hi"},
        ]
    )
    assert result["system"] == "Be brief.\n\nAnswer in German."
    assert result["messages"] == [{"role": "user", "content": "Hi"}]


def test_max_completion_tokens_wins_over_max_tokens():
    assert to_anthropic(messages=[], max_tokens=50)["max_tokens"] == 50
    assert to_anthropic(messages=[], max_tokens=50, max_completion_tokens=70)["max_tokens"] == 70


def test_temperature_is_clamped_to_anthropic_range_and_stop_becomes_stop_sequences():
    result = to_anthropic(messages=[], temperature=1.7, top_p=0.9, stop="END")
    assert result["temperature"] == 1.0
    assert result["top_p"] == 0.9
    assert result["stop_sequences"] == ["END"]
    assert to_anthropic(messages=[], temperature=-0.5, stop=["a", "b"])["temperature"] == 0.0
    assert to_anthropic(messages=[], stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in to_anthropic(messages=[], stop=None)


def test_non_numeric_fields_are_a_translation_error_naming_the_field():
    with pytest.raises(TranslationError) as info:
        to_anthropic(messages=[], temperature="hot")
    assert info.value.param == "temperature"
    with pytest.raises(TranslationError):
        to_anthropic(messages=[], max_tokens="many")


def test_image_parts_become_base64_or_url_image_blocks():
    result = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
                ],
            }
        ]
    )
    assert result["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.jpg"}},
    ]


def test_pdf_file_part_becomes_a_document_block():
    result = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                ],
            }
        ]
    )
    assert result["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        }
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}},
        {"type": "video", "video": {}},
    ],
)
def test_unsupported_parts_are_rejected_with_a_clear_error(part):
    with pytest.raises(TranslationError) as info:
        to_anthropic(messages=[{"role": "user", "content": [part]}])
    assert info.value.param == "messages"
    assert info.value.message


def test_assistant_tool_calls_and_tool_results_map_to_tool_use_and_one_user_turn():
    result = to_anthropic(
        messages=[
            {"role": "user", "content": "Weather in Bonn and Köln?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Bonn"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Köln"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "12 °C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "14 °C"}]},
            {"role": "user", "content": "And tomorrow?"},
        ]
    )
    assert result["messages"] == [
        {"role": "user", "content": "Weather in Bonn and Köln?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Bonn"}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Köln"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "12 °C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "14 °C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_ids_are_made_acceptable_to_anthropic_consistently():
    result = to_anthropic(
        messages=[
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "functions.weather:0",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "functions.weather:0", "content": "ok"},
        ]
    )
    tool_use = result["messages"][0]["content"][0]
    tool_result = result["messages"][1]["content"][0]
    assert tool_use["id"] == tool_result["tool_use_id"] == "functions_weather_0"


def test_assistant_text_with_tool_call_keeps_both_in_order():
    result = to_anthropic(
        messages=[
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}],
            }
        ]
    )
    assert result["messages"][0]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "c", "name": "f", "input": {}},
    ]


def test_invalid_tool_arguments_from_the_client_are_a_400():
    with pytest.raises(TranslationError):
        to_anthropic(
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
                    ],
                }
            ]
        )
    with pytest.raises(TranslationError):
        to_anthropic(
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}
                    ],
                }
            ]
        )


def test_consecutive_user_messages_merge_into_one_turn():
    result = to_anthropic(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert result["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_tools_and_tool_choice_variants():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    result = to_anthropic(messages=[], tools=tools)
    assert result["tools"] == [
        {
            "name": "weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in result
    assert to_anthropic(messages=[], tools=tools, tool_choice="auto")["tool_choice"] == {"type": "auto"}
    assert to_anthropic(messages=[], tools=tools, tool_choice="required")["tool_choice"] == {"type": "any"}
    assert to_anthropic(messages=[], tools=tools, tool_choice="none")["tool_choice"] == {"type": "none"}
    named = {"type": "function", "function": {"name": "now"}}
    assert to_anthropic(messages=[], tools=tools, tool_choice=named)["tool_choice"] == {
        "type": "tool",
        "name": "now",
    }
    assert to_anthropic(messages=[], tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert to_anthropic(messages=[], tools=tools, tool_choice="required", parallel_tool_calls=False)[
        "tool_choice"
    ] == {"type": "any", "disable_parallel_tool_use": True}


def test_non_function_tools_and_bad_tool_choice_are_rejected():
    with pytest.raises(TranslationError):
        to_anthropic(messages=[], tools=[{"type": "web_search"}])
    with pytest.raises(TranslationError):
        to_anthropic(
            messages=[], tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="sometimes"
        )


def test_json_mode_becomes_a_system_instruction():
    result = to_anthropic(
        messages=[{"role": "system", "content": "S"}], response_format={"type": "json_object"}
    )
    assert result["system"].startswith("S\n\n")
    assert "JSON" in result["system"]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    result = to_anthropic(
        messages=[], response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    )
    assert '"properties": {"n": {"type": "integer"}}' in result["system"]
    assert "system" not in to_anthropic(messages=[], response_format={"type": "text"})


def test_stream_user_and_unsupported_extras():
    result = to_anthropic(
        messages=[],
        stream=True,
        stream_options={"include_usage": True},
        user="dms-7",
        seed=1,
        logprobs=False,
        frequency_penalty=0.1,
    )
    assert result["stream"] is True
    assert result["metadata"] == {"user_id": "dms-7"}
    for dropped in ("stream_options", "seed", "logprobs", "frequency_penalty", "user"):
        assert dropped not in result
    with pytest.raises(TranslationError):
        to_anthropic(messages=[], n=2)
    with pytest.raises(TranslationError):
        to_anthropic(messages=[], functions=[{"name": "f"}])
    with pytest.raises(TranslationError):
        to_anthropic(messages=[{"role": "function", "name": "f", "content": "x"}])


# --------------------------------------------------------------------------- Anthropic → OpenAI


def to_openai(**body):
    return anthropic_request_to_openai({"model": "gpt-x", "max_tokens": 100, **body})


def test_anthropic_plain_request():
    result = to_openai(
        messages=[{"role": "user", "content": "Hallo"}],
        system="Be brief.",
        temperature=0.3,
        top_p=0.8,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u1"},
    )
    assert result == {
        "model": "gpt-x",
        "max_tokens": 100,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hallo"}],
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["END"],
        "user": "u1",
    }


def test_anthropic_system_blocks_and_text_blocks_are_flattened():
    result = to_openai(
        system=[
            {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "B"},
        ],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}
        ],
    )
    assert result["messages"] == [{"role": "system", "content": "A\nB"}, {"role": "user", "content": "x\ny"}]


def test_anthropic_images_and_documents_become_content_parts():
    result = to_openai(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.org/a.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                    },
                    {"type": "text", "text": "Describe"},
                ],
            }
        ]
    )
    assert result["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
        },
        {"type": "text", "text": "Describe"},
    ]


def test_anthropic_tool_conversation_becomes_tool_calls_and_tool_messages():
    result = to_openai(
        tools=[{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Bonn"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "12 °C"}],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    )
    assert result["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "parameters": {"type": "object"}, "description": "Weather"},
        }
    ]
    assert result["tool_choice"] == "required"
    assert result["parallel_tool_calls"] is False
    assert result["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Bonn"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "12 °C"},
        {"role": "user", "content": "Thanks"},
    ]


def test_anthropic_tool_result_image_follows_as_user_part():
    result = to_openai(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [
                            {"type": "text", "text": "screenshot"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                            },
                        ],
                    }
                ],
            }
        ]
    )
    assert result["messages"] == [
        {"role": "tool", "tool_call_id": "t", "content": "screenshot"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_anthropic_tool_choice_variants(choice, expected):
    result = to_openai(messages=[{"role": "user", "content": "hi"}], tools=[{"name": "f", "input_schema": {}}],
                       tool_choice=choice)
    assert result["tool_choice"] == expected
    assert "parallel_tool_calls" not in result


def test_anthropic_stream_asks_upstream_for_usage():
    result = to_openai(messages=[{"role": "user", "content": "hi"}], stream=True)
    assert result["stream"] is True
    assert result["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 10, "messages": []}, "model"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 0, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 10}, "messages"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}, "messages"),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}],
            },
            "messages",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "tool"},
            },
            "tool_choice",
        ),
    ],
)
def test_anthropic_invalid_requests_name_the_field(body, param):
    with pytest.raises(TranslationError) as info:
        anthropic_request_to_openai(body)
    assert info.value.param == param


def test_round_trip_openai_anthropic_openai_keeps_the_conversation():
    original = {
        "model": "m",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "R"},
        ],
    }
    back = anthropic_request_to_openai(openai_request_to_anthropic(original))
    assert back["messages"] == original["messages"]
    assert back["max_tokens"] == 64
