"""Stream translation OpenAI ⇄ Anthropic, checked event by event and through the SDKs' own accumulators."""

from __future__ import annotations

import json

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from app.wire.anthropic_to_openai import UpstreamStreamError, anthropic_stream_to_openai_chunks
from app.wire.openai_to_anthropic import openai_chunks_to_anthropic_events

ANTHROPIC_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def anthropic_final_message(events):
    """What anthropic's MessageStream.get_final_message() would build from these events (strictly typed)."""
    snapshot, json_bufs = None, {}
    for event in events:
        snapshot = accumulate_event(
            event=ANTHROPIC_EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=json_bufs
        )
    return snapshot


def openai_final_completion(chunks):
    """What openai's chat stream helper would build from these chunks (each chunk strictly typed)."""
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.current_completion_snapshot


def start(input_tokens=25, cache_read=0):
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XY",
            "type": "message",
            "role": "assistant",
            "model": "claude-up",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": 1,
                "cache_read_input_tokens": cache_read,
                "cache_creation_input_tokens": 0,
            },
        },
    }


def text_block(index, *pieces):
    yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
    for piece in pieces:
        yield {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": index}


def tool_block(index, tool_id, name, *json_pieces):
    yield {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
    }
    for piece in json_pieces:
        yield {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": piece},
        }
    yield {"type": "content_block_stop", "index": index}


def finish(stop_reason="end_turn", output_tokens=7):
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }
    yield {"type": "message_stop"}


def anthropic_text_stream():
    yield start()
    yield {"type": "ping"}
    yield from text_block(0, "Guten", " Tag")
    yield from finish()


def anthropic_tool_stream():
    yield start()
    yield from text_block(0, "Checking.")
    yield from tool_block(1, "toolu_a", "weather", "", '{"city":', ' "Bonn"}')
    yield from tool_block(2, "toolu_b", "weather", '{"city": "Köln"}')
    yield from finish("tool_use", 40)


# --------------------------------------------------------------------------- Anthropic events → OpenAI chunks


def test_text_stream_chunks_are_exact():
    chunks = list(anthropic_stream_to_openai_chunks(anthropic_text_stream(), model="public"))
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]
    assert deltas == [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"content": "Guten"}, None),
        ({"content": " Tag"}, None),
        ({}, "stop"),
    ]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 25
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert chunks[-1]["usage"]["total_tokens"] == 32
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_01XY"}
    assert {c["model"] for c in chunks} == {"public"}
    assert len({c["created"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    completion = openai_final_completion(chunks)
    assert completion.choices[0].message.content == "Guten Tag"
    assert completion.choices[0].message.role == "assistant"


def test_usage_chunk_only_when_asked_for():
    chunks = list(anthropic_stream_to_openai_chunks(anthropic_text_stream(), include_usage=False))
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_tool_calls_are_numbered_among_tool_calls_not_by_block_index():
    chunks = list(anthropic_stream_to_openai_chunks(anthropic_tool_stream(), model="public"))
    tool_deltas = [
        c["choices"][0]["delta"]["tool_calls"]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert tool_deltas == [
        [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"city":'}}],
        [{"index": 0, "function": {"arguments": ' "Bonn"}'}}],
        [{"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "weather", "arguments": ""}}],
        [{"index": 1, "function": {"arguments": '{"city": "Köln"}'}}],
    ]
    roles = [c for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]]
    assert len(roles) == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    completion = openai_final_completion(chunks)
    message = completion.choices[0].message
    assert message.content == "Checking."
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls] == [
        ("toolu_a", "weather", {"city": "Bonn"}),
        ("toolu_b", "weather", {"city": "Köln"}),
    ]


def test_tool_call_first_sends_null_content_with_the_role():
    events = [start(), *tool_block(0, "toolu_z", "now", "{}"), *finish("tool_use")]
    first = list(anthropic_stream_to_openai_chunks(events))[0]["choices"][0]["delta"]
    assert first["role"] == "assistant"
    assert first["content"] is None
    assert first["tool_calls"][0]["index"] == 0


def test_thinking_blocks_are_dropped_and_cached_usage_counted():
    events = [
        start(input_tokens=5, cache_read=100),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_stop", "index": 0},
        *text_block(1, "42"),
        *finish("max_tokens", 3),
    ]
    chunks = list(anthropic_stream_to_openai_chunks(events))
    assert openai_final_completion(chunks).choices[0].message.content == "42"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["prompt_tokens"] == 105
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 100


def test_error_event_raises_with_its_type_after_earlier_chunks():
    events = [
        start(),
        *list(text_block(0, "Hal"))[:2],
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    seen = []
    with pytest.raises(UpstreamStreamError) as info:
        for chunk in anthropic_stream_to_openai_chunks(events):
            seen.append(chunk)
    assert info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded"
    assert [c["choices"][0]["delta"].get("content") for c in seen] == ["", "Hal"]


def test_stream_ending_without_message_stop_raises():
    events = [start(), *text_block(0, "Hal")]
    with pytest.raises(UpstreamStreamError):
        list(anthropic_stream_to_openai_chunks(events))


def test_chunks_are_produced_lazily_as_events_arrive():
    pulled = []

    def source():
        for event in anthropic_text_stream():
            pulled.append(event["type"])
            yield event

    stream = anthropic_stream_to_openai_chunks(source())
    next(stream)
    assert pulled == ["message_start", "ping", "content_block_start"]


# --------------------------------------------------------------------------- OpenAI chunks → Anthropic events


def chunk(delta=None, finish_reason=None, usage=None, choices=True):
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up"}
    body["choices"] = (
        [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}]
        if choices
        else []
    )
    if usage is not None:
        body["usage"] = usage
    return body


USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 9,
    "total_tokens": 39,
    "prompt_tokens_details": {"cached_tokens": 10},
}


def openai_text_chunks():
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    yield chunk({"content": "Guten"})
    yield chunk({"content": " Tag"})
    yield chunk({}, "stop")
    yield chunk(usage=USAGE, choices=False)


def test_text_chunks_become_the_anthropic_event_sequence():
    events = list(
        openai_chunks_to_anthropic_events(
            openai_text_chunks(), model="public", message_id="msg_1", input_tokens=28
        )
    )
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["id"] == "msg_1"
    assert events[0]["message"]["model"] == "public"
    assert events[0]["message"]["content"] == []
    assert events[0]["message"]["usage"]["input_tokens"] == 28
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[2] == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Guten"},
    }
    assert events[4] == {"type": "content_block_stop", "index": 0}
    assert events[5] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 20,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
        },
    }
    message = anthropic_final_message(events)
    assert message.content[0].text == "Guten Tag"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 9
    assert message.usage.input_tokens == 20


def openai_tool_chunks():
    yield chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ],
        }
    )
    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})
    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Bonn"}'}}]})
    yield chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        }
    )
    yield chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Köln"}'}}]})
    yield chunk({}, "tool_calls")
    yield chunk(usage=USAGE, choices=False)


def test_tool_call_chunks_become_tool_use_blocks_with_increasing_indexes():
    events = list(openai_chunks_to_anthropic_events(openai_tool_chunks(), model="public"))
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert starts == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "call_a", "name": "weather", "input": {}},
        },
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "call_b", "name": "weather", "input": {}},
        },
    ]
    deltas = [(e["index"], e["delta"]) for e in events if e["type"] == "content_block_delta"]
    assert deltas == [
        (0, {"type": "input_json_delta", "partial_json": '{"city":'}),
        (0, {"type": "input_json_delta", "partial_json": ' "Bonn"}'}),
        (1, {"type": "input_json_delta", "partial_json": '{"city": "Köln"}'}),
    ]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1]
    message = anthropic_final_message(events)
    assert message.stop_reason == "tool_use"
    assert [(b.id, b.name, b.input) for b in message.content] == [
        ("call_a", "weather", {"city": "Bonn"}),
        ("call_b", "weather", {"city": "Köln"}),
    ]


def test_text_then_tool_call_opens_a_second_block():
    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "now", "arguments": "{}"},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
    ]
    events = list(openai_chunks_to_anthropic_events(chunks, model="m"))
    message = anthropic_final_message(events)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {}
    assert [e["index"] for e in events if e["type"] == "content_block_stop"] == [0, 1]


def test_tool_calls_without_index_from_lenient_servers():
    chunks = [
        chunk(
            {"tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x"'}}]}
        ),
        chunk({"tool_calls": [{"function": {"arguments": ": 1}"}}]}),
        chunk(
            {"tool_calls": [{"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
        ),
        chunk({}, "stop"),
    ]
    message = anthropic_final_message(openai_chunks_to_anthropic_events(chunks, model="m"))
    assert [(b.id, b.name, b.input) for b in message.content] == [("a", "f", {"x": 1}), ("b", "g", {})]
    assert message.stop_reason == "tool_use"  # "stop" next to tool calls still means tool_use


def test_without_upstream_usage_output_tokens_are_estimated_and_input_kept():
    chunks = [chunk({"content": "abcdefghij"}), chunk({}, "length")]
    events = list(openai_chunks_to_anthropic_events(chunks, model="m", input_tokens=12))
    delta = events[-2]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert anthropic_final_message(events).usage.output_tokens == 3


def test_empty_upstream_stream_still_gives_a_well_formed_message():
    events = list(openai_chunks_to_anthropic_events([], model="m"))
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert anthropic_final_message(events).content == []


def test_other_choices_and_reasoning_fields_are_ignored():
    chunks = [
        chunk({"content": "a", "reasoning_content": "thinking…"}),
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}],
        },
        chunk({}, "stop"),
    ]
    message = anthropic_final_message(openai_chunks_to_anthropic_events(chunks, model="m"))
    assert [b.text for b in message.content] == ["a"]


def test_message_start_waits_for_the_first_upstream_chunk():
    """So that an upstream failing before its first chunk is still a plain error status for the client."""
    pulled = []

    def source():
        for item in openai_text_chunks():
            pulled.append(item)
            yield item

    events = openai_chunks_to_anthropic_events(source(), model="m")
    assert next(events)["type"] == "message_start"
    assert len(pulled) == 1

    def failing():
        raise RuntimeError("upstream gone")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError):
        next(openai_chunks_to_anthropic_events(failing(), model="m"))


def test_round_trip_anthropic_events_through_openai_chunks_and_back():
    chunks = anthropic_stream_to_openai_chunks(anthropic_tool_stream(), model="m")
    message = anthropic_final_message(openai_chunks_to_anthropic_events(chunks, model="m"))
    assert message.content[0].text == "Checking."
    assert [(b.id, b.input) for b in message.content[1:]] == [
        ("toolu_a", {"city": "Bonn"}),
        ("toolu_b", {"city": "Köln"}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 40
    assert message.usage.input_tokens == 25
