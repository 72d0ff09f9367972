"""An OpenAI client using a Claude model: the official openai SDK against a live gateway whose model sits on
an `anthropic` connection (the fake Anthropic upstream), plain, streamed and with tools (compat.md §6)."""

from __future__ import annotations

import json

import openai
import pytest
from anthropic_catalog import (  # noqa: F401  (anthropic_catalog is a fixture)
    CLAUDE,
    UPSTREAM_SECRET,
    anthropic_catalog,
    upstream_messages_requests,
)
from api_helpers import raw_post, sse_data, user, wait_for

pytestmark = pytest.mark.usefixtures("anthropic_catalog")

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def sent_to_upstream(gateway) -> dict:
    return upstream_messages_requests(gateway)[-1]


def test_plain_chat_completion(gateway, client):
    completion = client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hallo Welt"}],
    )
    choice = completion.choices[0]
    assert choice.message.content == "Echo: Hallo Welt"
    assert choice.message.role == "assistant" and choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.model == CLAUDE and completion.object == "chat.completion"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (4, 3, 7)
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    sent = sent_to_upstream(gateway)
    assert sent["headers"]["x-api-key"] == UPSTREAM_SECRET and "authorization" not in sent["headers"]
    assert sent["json"] == {
        "model": "claude-fake",
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hallo Welt"}],
    }
    row = wait_for(lambda: gateway.log_row(completion._request_id))
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"]) == ("chat", 4, 3)


def test_request_fields_are_translated(gateway, client):
    client.chat.completions.create(
        model=CLAUDE,
        max_completion_tokens=77,
        temperature=1.6,
        top_p=0.9,
        stop="END",
        user="dms-7",
        seed=42,
        messages=[
            {"role": "developer", "content": "Rule one."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
        ],
    )
    sent = sent_to_upstream(gateway)["json"]
    assert sent["max_tokens"] == 77
    assert sent["temperature"] == 1.0  # clamped to Anthropic's range
    assert (sent["top_p"], sent["stop_sequences"], sent["metadata"]) == (0.9, ["END"], {"user_id": "dms-7"})
    assert sent["system"] == "Rule one."
    assert "seed" not in sent
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]


def test_streamed_chat_completion_with_usage(gateway, client):
    stream = client.chat.completions.create(
        model=CLAUDE, stream=True, stream_options={"include_usage": True}, messages=user("eins zwei drei")
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: eins zwei drei"
    assert [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role] == ["assistant"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.completion_tokens == 4
    assert {c.model for c in chunks} == {CLAUDE} and len({c.id for c in chunks}) == 1
    assert sent_to_upstream(gateway)["json"]["stream"] is True


def test_stream_framing_without_usage(gateway):
    conn, response = raw_post(
        gateway.url,
        "/v1/chat/completions",
        {"model": CLAUDE, "stream": True, "messages": user("Hallo")},
        gateway.key,
    )
    assert response.status == 200
    body = response.read()
    conn.close()
    assert body.endswith(b"data: [DONE]\n\n") and b"event:" not in body
    chunks = [json.loads(data) for data in sse_data(body)[:-1]]
    assert all(chunk["choices"] for chunk in chunks)  # no usage chunk: the client did not ask
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Echo: Hallo"
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert (row["input_tokens"], row["output_tokens"], row["usage_estimated"]) == (1, 2, False)


def test_tool_call_and_result_round_trip(gateway, client):
    first = client.chat.completions.create(model=CLAUDE, tools=[WEATHER], messages=user("Weather in Bonn?"))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("toolu_fake01", "function", "weather")
    assert json.loads(call.function.arguments) == {"city": "Bonn"}
    assert sent_to_upstream(gateway)["json"]["tools"] == [
        {
            "name": "weather",
            "input_schema": WEATHER["function"]["parameters"],
            "description": "Current weather for a city",
        }
    ]

    second = client.chat.completions.create(
        model=CLAUDE,
        tools=[WEATHER],
        messages=[
            *user("Weather in Bonn?"),
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "12 °C"},
        ],
    )
    assert second.choices[0].message.content == "Tool said: 12 °C"
    messages = sent_to_upstream(gateway)["json"]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_fake01", "name": "weather", "input": {"city": "Bonn"}}],
    }
    assert messages[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_fake01", "content": "12 °C"}],
    }


def test_tool_choice_and_parallel_calls_are_translated(gateway, client):
    client.chat.completions.create(
        model=CLAUDE,
        tools=[WEATHER],
        parallel_tool_calls=False,
        tool_choice={"type": "function", "function": {"name": "weather"}},
        messages=user("Weather?"),
    )
    assert sent_to_upstream(gateway)["json"]["tool_choice"] == {
        "type": "tool",
        "name": "weather",
        "disable_parallel_tool_use": True,
    }


def test_streamed_tool_call_with_the_stream_helper(gateway, client):
    with client.chat.completions.stream(
        model=CLAUDE, tools=[WEATHER], messages=user("Weather in Bonn?")
    ) as s:
        events = list(s)
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_fake01",
        "weather",
        {"city": "Bonn"},
    )
    assert final.choices[0].finish_reason == "tool_calls"
    deltas = [
        e.chunk.choices[0].delta.tool_calls
        for e in events
        if e.type == "chunk" and e.chunk.choices and e.chunk.choices[0].delta.tool_calls
    ]
    assert all(part.index == 0 for parts in deltas for part in parts)
    assert [parts[0].id for parts in deltas if parts[0].id] == ["toolu_fake01"]  # id and name sent once


def test_cached_prompt_tokens(gateway, client):
    completion = client.chat.completions.create(model=CLAUDE, messages=user("[fake cached=1] Hallo"))
    assert completion.usage.prompt_tokens == 3 + 100
    assert completion.usage.prompt_tokens_details.cached_tokens == 100


def test_what_claude_cannot_do_is_a_400(gateway, client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CLAUDE, n=2, messages=user("Hallo"))
    assert caught.value.code == "invalid_request" and caught.value.param == "n"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=CLAUDE,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}],
                }
            ],
        )


def test_legacy_completions_and_embeddings_are_refused_for_claude(gateway, client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=CLAUDE, prompt="Hallo")
    assert "completions" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=CLAUDE, input="Hallo")
    assert "embeddings" in caught.value.message


def test_upstream_overloaded_is_503(gateway, client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=user("[fake status=529]"))
    assert caught.value.status_code == 503 and caught.value.code == "upstream_unavailable"


@pytest.mark.parametrize(
    ("directive", "code"), [("error_after=4", "upstream_unavailable"), ("die_after=4", "upstream_error")]
)
def test_failure_mid_stream_is_one_error_frame(gateway, client, directive, code):
    stream = client.chat.completions.create(
        model=CLAUDE, stream=True, messages=user(f"[fake {directive}] a b")
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received and caught.value.code == code
    assert not isinstance(caught.value, openai.APIStatusError)  # raised from the stream, not a status
