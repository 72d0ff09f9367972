"""Chat chunk streams → Responses stream events, judged by the SDK's event types, its stream accumulator
and `client.responses.stream()`, and checked byte by byte."""
from __future__ import annotations

import json

from support.responses_sdk import accumulate, client_answering, frames, validated

from app.api_errors import ApiError
from app.wire.responses_answer import response_shell
from app.wire.responses_stream import ResponsesStreamEncoder

TOOL = {"type": "function", "name": "get_weather", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False}}
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


def chunk(delta: dict | None = None, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "upstream",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


def usage_chunk(usage: dict = USAGE) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "upstream",
            "choices": [], "usage": usage}


def text_chunks(*pieces: str, finish: str = "stop") -> list[dict]:
    first = [chunk({"role": "assistant", "content": ""})]
    return first + [chunk({"content": piece}) for piece in pieces] + [chunk(finish=finish), usage_chunk()]


def tool_chunks() -> list[dict]:
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Bern"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "get_weather", "arguments": '{"city":"Genf"}'}}]}),
        chunk(finish="tool_calls"),
        usage_chunk(),
    ]


def encoder(request: dict | None = None) -> ResponsesStreamEncoder:
    return ResponsesStreamEncoder(response_shell(request or {"model": "public", "input": "x"}, model="public"))


def run(chunks, request: dict | None = None, coder: ResponsesStreamEncoder | None = None) -> bytes:
    coder = coder or encoder(request)
    return b"".join(coder.encode(item) for item in chunks) + coder.end()


def names(data: bytes) -> list[str]:
    return [name for name, _ in frames(data)]


def test_text_stream_event_sequence():
    data = run(text_chunks("Hel", "lo"))
    assert names(data) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    events = validated(data)
    assert [event.delta for event in events if event.type == "response.output_text.delta"] == ["Hel", "lo"]
    assert events[6].text == "Hello" and events[7].part.text == "Hello"
    assert events[8].item.status == "completed" and events[8].item.content[0].text == "Hello"
    final = events[-1].response
    assert final.status == "completed" and final.model == "public" and final.output_text == "Hello"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (11, 4, 15)
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    assert len({event.response.id for event in (events[0], events[1], events[-1])}) == 1
    item_ids = {event.item_id for event in events if hasattr(event, "item_id")}
    assert item_ids == {events[2].item.id}


def test_text_stream_through_the_sdk_accumulator():
    state = accumulate(run(text_chunks("Grü", "ezi ", "🙂")))
    response = state._completed_response
    assert response.output_text == "Grüezi 🙂" and response.usage.output_tokens == 4


def test_framing_bytes():
    data = run(text_chunks("a\nb \"q\" ü"))
    for frame in data.split(b"\n\n")[:-1]:
        assert frame.count(b"\n") == 1  # one event line, one data line: newlines in text are escaped
    delta = data.split(b"\n\n")[4]
    assert delta.startswith(b"event: response.output_text.delta\ndata: {")
    assert json.loads(delta.split(b"\n")[1][6:])["delta"] == "a\nb \"q\" ü"
    assert "ü".encode() in delta  # UTF-8 as it is, not \u escapes
    assert b"[DONE]" not in data and not data.startswith(b"\n")
    created = data.split(b"\n\n")[0]
    assert created.startswith(b'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_')
    for name, payload in frames(data):  # compact JSON, non-ASCII as it is
        line = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        assert f"event: {name}\ndata: ".encode() + line + b"\n\n" in data


def test_raw_chunk_bytes_give_the_same_events_as_dicts():
    chunks = text_chunks("Hi", " there")
    from_dicts = frames(run(chunks, coder=encoder()))
    from_bytes = frames(run([json.dumps(item).encode() for item in chunks] + [b"[DONE]", b"not json"],
                            coder=encoder()))

    def shape(events):
        return [(name, {k: v for k, v in data.items() if k not in ("response", "item", "item_id")})
                for name, data in events]

    assert shape(from_dicts) == shape(from_bytes)


def test_tool_call_stream():
    data = run(tool_chunks(), {"model": "public", "input": "x", "tools": [TOOL]})
    assert names(data) == [
        "response.created", "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    events = validated(data)
    added = events[2].item
    assert added.type == "function_call" and added.call_id == "call_a" and added.name == "get_weather"
    assert added.id.startswith("fc_") and added.arguments == "" and added.status == "in_progress"
    assert events[7].arguments == '{"city":"Bern"}' and events[7].output_index == 0
    assert events[9].arguments == '{"city":"Genf"}' and events[9].output_index == 1
    assert events[8].item.status == "completed" and events[8].item.arguments == '{"city":"Bern"}'
    state = accumulate(data, tools=[TOOL])
    calls = state._completed_response.output
    assert [(call.call_id, call.parsed_arguments) for call in calls] == [
        ("call_a", {"city": "Bern"}), ("call_b", {"city": "Genf"})]


def test_text_then_tool_call_closes_the_message_first():
    chunks = [chunk({"role": "assistant", "content": "Let me check."}),
              chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "get_weather",
                                                                               "arguments": "{}"}}]}),
              chunk(finish="tool_calls"), usage_chunk()]
    data = run(chunks)
    assert names(data)[2:] == [
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    response = accumulate(data)._completed_response
    assert [item.type for item in response.output] == ["message", "function_call"]


def test_tool_calls_without_index_are_told_apart_by_id():
    chunks = [chunk({"tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": "{\"a\""}}]}),
              chunk({"tool_calls": [{"function": {"arguments": ":1}"}}]}),
              chunk({"tool_calls": [{"id": "call_b", "function": {"name": "g", "arguments": "{}"}}]}),
              chunk(finish="tool_calls")]
    response = accumulate(run(chunks))._completed_response
    assert [(item.call_id, item.name, item.arguments) for item in response.output] == [
        ("call_a", "f", '{"a":1}'), ("call_b", "g", "{}")]


def test_a_tool_call_without_an_id_gets_one():
    response = accumulate(run([chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}),
                               chunk(finish="tool_calls")]))._completed_response
    assert response.output[0].call_id.startswith("call_")


def test_output_cap_hit_ends_with_response_incomplete():
    data = run(text_chunks("Half a", finish="length"))
    assert names(data)[-1] == "response.incomplete"
    events = validated(data)
    final = events[-1].response
    assert final.status == "incomplete" and final.incomplete_details.reason == "max_output_tokens"
    assert final.output[0].status == "incomplete" and final.output_text == "Half a"
    assert final.usage.total_tokens == 15
    accumulate(data)  # the SDK takes the sequence without an error


def test_refusal_stream():
    data = run([chunk({"role": "assistant", "refusal": "I can't"}), chunk({"refusal": " help."}),
                chunk(finish="stop")])
    assert names(data)[2:] == [
        "response.output_item.added", "response.content_part.added", "response.refusal.delta",
        "response.refusal.delta", "response.refusal.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    response = accumulate(data)._completed_response
    assert response.output[0].content[0].type == "refusal"
    assert response.output[0].content[0].refusal == "I can't help."


def test_without_usage_counts_zero_unless_a_fallback_is_given():
    chunks = text_chunks("x")[:-1]
    assert validated(run(chunks))[-1].response.usage.total_tokens == 0

    class Estimating(ResponsesStreamEncoder):
        def fallback_usage(self):
            return {"prompt_tokens": 3, "completion_tokens": 1}

    coder = Estimating(response_shell({"model": "public", "input": "x"}, model="public"))
    usage = validated(run(chunks, coder=coder))[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 1, 4)


def test_an_empty_stream_is_an_empty_message():
    data = run([])
    assert names(data) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert accumulate(data)._completed_response.output_text == ""


def test_an_error_after_the_start_is_response_failed():
    coder = encoder()
    data = b"".join(coder.encode(item) for item in text_chunks("Partial")[:2])
    error = ApiError(504, "api_error", "upstream_timeout", "The upstream did not answer in time.")
    data += coder.error(error)
    assert names(data)[-1] == "response.failed"
    events = validated(data)
    failed = events[-1].response
    assert failed.status == "failed" and failed.id == events[0].response.id
    assert failed.error.code == "server_error" and failed.error.message == "The upstream did not answer in time."
    assert failed.output[0].status == "incomplete" and failed.output[0].content[0].text == "Partial"
    state = accumulate(data)
    assert state._completed_response is None  # failed, not completed: the SDK's helper says so
    # nothing follows the failure
    assert coder.encode(chunk({"content": "more"})) == b"" and coder.end() == b"" and coder.error(error) == b""


def test_error_codes_by_status():
    """ResponseError.code is a fixed list: the gateway's errors map onto it by status."""
    for status, code in ((429, "rate_limit_exceeded"), (400, "invalid_prompt"), (502, "server_error"),
                         (402, "server_error")):
        coder = encoder()
        data = coder.encode(chunk({"content": "x"})) + coder.error(ApiError(status, "api_error", "c", "m"))
        error = validated(data)[-1].response.error
        assert (error.code, error.message, error.type) == (code, "m", "api_error")


def test_an_error_before_any_chunk_still_starts_the_response():
    coder = encoder()
    data = coder.error(ApiError(429, "rate_limit_error", "rate_limited", "Slow down."))
    assert names(data) == ["response.created", "response.in_progress", "response.failed"]
    failed = validated(data)[-1].response
    assert failed.error.code == "rate_limit_exceeded" and failed.output == []


def test_sequence_numbers_rise_across_encode_calls():
    coder = encoder()
    parts = [coder.encode(item) for item in tool_chunks()] + [coder.end()]
    numbers = [data["sequence_number"] for part in parts if part for _, data in frames(part)]
    assert numbers == list(range(len(numbers)))


def test_ping_is_an_sse_comment():
    assert encoder().ping == b": ping\n\n"


def test_sdk_responses_stream_helper_accepts_the_stream():
    data = run(tool_chunks()[:1] + [chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Bern"}'}}]}),
                                    chunk(finish="tool_calls"), usage_chunk()],
               {"model": "public", "input": "x", "tools": [TOOL]})
    client, sent = client_answering(data, "text/event-stream")
    with client.responses.stream(model="public", input="Weather?", tools=[TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert sent[0]["stream"] is True
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output[0].parsed_arguments == {"city": "Bern"} and final.usage.input_tokens == 11


def test_sdk_responses_stream_helper_text_deltas():
    client, _ = client_answering(run(text_chunks("One ", "two")), "text/event-stream")
    with client.responses.stream(model="public", input="Count") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["One ", "two"] and final.output_text == "One two"


class StoringEncoder(ResponsesStreamEncoder):
    """Sees the finished response before it is sent; refuses to keep it when told to."""

    def __init__(self, refuse: ApiError | None = None):
        super().__init__(response_shell({"model": "public", "input": "x"}, model="public"))
        self.refuse = refuse
        self.seen: list[dict] = []

    def completing(self, response: dict) -> None:
        self.seen.append(response)
        if self.refuse is not None:
            raise self.refuse


def test_completing_sees_the_response_that_completed_carries():
    coder = StoringEncoder()
    events = validated(run(text_chunks("Hi"), coder=coder))
    (seen,) = coder.seen
    assert events[-1].type == "response.completed"
    assert seen["id"] == events[-1].response.id == events[0].response.id
    assert seen["status"] == "completed" and seen["output"][0]["content"][0]["text"] == "Hi"


def test_a_response_that_cannot_be_kept_ends_in_response_failed():
    error = ApiError(400, "invalid_request_error", "conversation_too_large", "This conversation is full.")
    coder = StoringEncoder(refuse=error)
    data = run(text_chunks("Hi"), coder=coder)
    assert names(data)[-2:] == ["response.output_item.done", "response.failed"]
    failed = validated(data)[-1].response
    assert failed.status == "failed" and failed.error.message == "This conversation is full."
    assert failed.output[0].content[0].text == "Hi"
    assert coder.end() == b""
