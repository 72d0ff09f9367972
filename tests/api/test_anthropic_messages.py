"""POST /v1/messages with the official anthropic SDK against a live gateway (compat.md §6): any model,
plain, streamed and with tools — translated for OpenAI-style upstreams (the demo model, the fake OpenAI
upstream) and passed through for an Anthropic upstream (the fake Anthropic upstream)."""

from __future__ import annotations

import json

import anthropic
import pytest
import requests
from anthropic_catalog import (  # noqa: F401  (anthropic_catalog is a fixture)
    CLAUDE,
    UPSTREAM_SECRET,
    anthropic_catalog,
    anthropic_client,
    sse_events,
    upstream_messages_requests,
)
from api_helpers import wait_for

pytestmark = pytest.mark.usefixtures("anthropic_catalog")

WEATHER = {
    "name": "weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def hello(text="Hallo Welt"):
    return [{"role": "user", "content": text}]


def logged(gateway, request_id: str) -> dict:
    return wait_for(lambda: gateway.log_row(request_id))


# --- translated: OpenAI-style upstreams ------------------------------------------------------------


def test_plain_message_from_the_demo_model(gateway):
    client = anthropic_client(gateway)
    raw = client.messages.with_raw_response.create(model="demo", max_tokens=200, messages=hello())
    message = raw.parse()
    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "demo"
    assert [block.type for block in message.content] == ["text"]
    assert "Hallo Welt" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    assert message._request_id == raw.headers["request-id"]
    row = logged(gateway, message._request_id)
    assert row["endpoint"] == "messages" and row["status"] == 200 and row["model"] == "demo"
    assert (row["input_tokens"], row["output_tokens"]) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )
    assert not row["usage_estimated"]


def test_streamed_message_matches_the_plain_one(gateway):
    client = anthropic_client(gateway)
    plain = client.messages.create(model="demo", max_tokens=200, messages=hello())
    with client.messages.stream(model="demo", max_tokens=200, messages=hello()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.request_id
    assert len(pieces) > 3  # it really streamed
    assert "".join(pieces) == final.content[0].text == plain.content[0].text
    assert final.model == "demo"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    row = logged(gateway, request_id)
    assert row["stream"] and row["status"] == 200
    assert (row["input_tokens"], row["output_tokens"]) == (
        plain.usage.input_tokens,
        plain.usage.output_tokens,
    )


def test_stream_events_are_named_typed_and_indexed(gateway):
    response = requests.post(
        f"{gateway.url}/v1/messages",
        timeout=30,
        headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01", "Accept": "application/json"},
        json={
            "model": "demo",
            "max_tokens": 200,
            "stream": True,
            "tools": [WEATHER],
            "messages": hello("Say something, then check the weather in Bonn"),
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"] == response.headers["x-request-id"]
    assert b"[DONE]" not in response.content
    events = sse_events(response.content)
    assert all(name == data["type"] for name, data in events)  # an event: line on every event, matching
    kinds = [name for name, _ in events if name != "ping"]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [data["index"] for name, data in events if name == "content_block_start"]
    stops = [data["index"] for name, data in events if name == "content_block_stop"]
    assert starts == stops == list(range(len(starts))) and starts
    for name, data in events:
        if name == "content_block_delta":
            assert data["index"] in starts
    delta = next(data for name, data in events if name == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert isinstance(delta["usage"]["output_tokens"], int) and delta["usage"]["output_tokens"] > 0


def test_tools_round_trip_through_an_openai_style_upstream(gateway):
    client = anthropic_client(gateway)
    first = client.messages.create(
        model="gpt-test", max_tokens=100, tools=[WEATHER], messages=hello("What is the weather in Bonn?")
    )
    assert first.stop_reason == "tool_use"
    tool_use = next(block for block in first.content if block.type == "tool_use")
    assert tool_use.name == "weather" and tool_use.input == {"city": "Berlin"}  # the fake upstream's choice
    sent = gateway.last_upstream_request()
    assert sent["path"] == "/v1/chat/completions"
    assert sent["json"]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": WEATHER["input_schema"],
                "description": WEATHER["description"],
            },
        }
    ]
    assert sent["json"]["max_tokens"] == 100

    second = client.messages.create(
        model="gpt-test",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            *hello("What is the weather in Bonn?"),
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "12 °C"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    messages = gateway.last_upstream_request()["json"]["messages"]
    assert messages[-2]["tool_calls"][0]["id"] == tool_use.id
    assert json.loads(messages[-2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Berlin"}
    assert messages[-1] == {"role": "tool", "tool_call_id": tool_use.id, "content": "12 °C"}


def test_streamed_tool_use_from_the_demo_model(gateway):
    client = anthropic_client(gateway)
    with client.messages.stream(
        model="demo",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "weather"},
        messages=hello("Weather in Bonn"),
    ) as stream:
        final = stream.get_final_message()
    tool_use = final.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "weather"
    assert tool_use.input == {"city": "Bonn"}  # the demo model fills strings with the prompt's last word
    assert final.stop_reason == "tool_use"


def test_openai_style_upstream_is_asked_for_usage_and_gets_translated_fields(gateway):
    client = anthropic_client(gateway)
    with client.messages.stream(
        model="gpt-test",
        max_tokens=64,
        system="Be brief.",
        stop_sequences=["END"],
        extra_body={"temperature": 0.2},
        messages=hello(),
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and len(text.split()) == 8  # the fake upstream's eight words
    sent = gateway.last_upstream_request()["json"]
    assert sent["model"] == "gpt-fake" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hallo Welt"},
    ]
    assert (sent["max_tokens"], sent["stop"], sent["temperature"]) == (64, ["END"], 0.2)
    assert final.usage.output_tokens == 8  # measured by the upstream, not estimated
    assert final.usage.input_tokens == 4  # the fake counts words: "Be brief." and "Hallo Welt"


# --- passed through: an Anthropic upstream ----------------------------------------------------------


def test_plain_message_through_an_anthropic_upstream(gateway):
    client = anthropic_client(gateway)
    message = client.messages.create(
        model=CLAUDE,
        max_tokens=50,
        messages=hello(),
        extra_body={"top_k": 5},
        metadata={"user_id": "dms-7"},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert message.content[0].text == "Echo: Hallo Welt"
    assert message.model == CLAUDE
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 3)
    sent = upstream_messages_requests(gateway)[-1]
    assert sent["headers"]["x-api-key"] == UPSTREAM_SECRET
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in sent["headers"]  # only over a connection that allows it (test_passthrough)
    assert "authorization" not in sent["headers"]  # the client's own key never goes upstream
    assert sent["json"]["model"] == "claude-fake"
    assert (sent["json"]["top_k"], sent["json"]["metadata"]) == (5, {"user_id": "dms-7"})  # as sent
    row = logged(gateway, message._request_id)
    assert (row["input_tokens"], row["output_tokens"], row["model"]) == (2, 3, CLAUDE)
    assert row["credits_micro"] == 2 * 3 + 3 * 15  # prices 3 and 15 per million tokens, in micro-credits


def test_streamed_message_through_an_anthropic_upstream(gateway):
    client = anthropic_client(gateway)
    with client.messages.stream(model=CLAUDE, max_tokens=50, messages=hello("eins zwei drei")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["Echo:", " eins", " zwei", " drei"]
    assert final.content[0].text == "Echo: eins zwei drei"
    assert final.model == CLAUDE
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert upstream_messages_requests(gateway)[-1]["json"]["stream"] is True


def test_native_stream_keeps_the_upstream_events_with_the_public_model(gateway):
    response = requests.post(
        f"{gateway.url}/v1/messages",
        timeout=30,
        headers={"Authorization": f"Bearer {gateway.key}", "anthropic-version": "2026-10-21"},
        json={"model": CLAUDE, "max_tokens": 50, "stream": True, "messages": hello()},
    )
    events = sse_events(response.content)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    assert events[0][1]["message"]["model"] == CLAUDE
    assert events[0][1]["message"]["id"].startswith("msg_fake")  # the upstream's own id


def test_tools_round_trip_through_an_anthropic_upstream(gateway):
    client = anthropic_client(gateway)
    with client.messages.stream(
        model=CLAUDE, max_tokens=50, tools=[WEATHER], messages=hello("Weather in Bonn?")
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in first.content] == [("tool_use", "weather", {"city": "Bonn"})]
    second = client.messages.create(
        model=CLAUDE,
        max_tokens=50,
        tools=[WEATHER],
        messages=[
            *hello("Weather in Bonn?"),
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": first.content[0].id, "content": "12 °C"}],
            },
        ],
    )
    assert second.content[0].text == "Tool said: 12 °C"


def test_cached_input_tokens_pass_through_and_are_billed(gateway):
    client = anthropic_client(gateway)
    message = client.messages.create(model=CLAUDE, max_tokens=50, messages=hello("[fake cached=1] Hallo"))
    assert message.usage.cache_read_input_tokens == 100
    row = logged(gateway, message._request_id)
    assert row["input_tokens"] == message.usage.input_tokens + 100


# --- headers of older SDKs and other clients --------------------------------------------------------


def test_x_api_key_and_old_version_header_as_sdk_0x_and_1x_send_them(gateway):
    client = anthropic.Anthropic(
        base_url=gateway.url,
        api_key=None,
        max_retries=0,
        default_headers={"X-Api-Key": gateway.key, "anthropic-version": "2023-06-01"},
    )
    raw = client.messages.with_raw_response.create(model="demo", max_tokens=50, messages=hello())
    assert raw.http_request.headers.get("authorization") is None
    assert raw.http_request.headers["x-api-key"] == gateway.key
    assert raw.parse().content[0].type == "text"


@pytest.mark.parametrize("version", [None, "2023-06-01", "2026-10-21", "2099-12-31", "not-a-date"])
def test_any_anthropic_version_is_accepted(gateway, version):
    headers = {"x-api-key": gateway.key, **({"anthropic-version": version} if version else {})}
    response = requests.post(
        f"{gateway.url}/v1/messages",
        headers=headers,
        timeout=30,
        json={"model": CLAUDE, "max_tokens": 20, "messages": hello()},
    )
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == "Echo: Hallo Welt"
    assert upstream_messages_requests(gateway)[-1]["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("path", ["/v1/messages", "/api/v1/messages", "/v1/v1/messages"])
def test_messages_under_the_other_prefixes(gateway, path):
    response = requests.post(
        f"{gateway.url}{path}",
        headers={"x-api-key": gateway.key},
        timeout=30,
        json={"model": "demo", "max_tokens": 20, "messages": hello()},
    )
    assert response.status_code == 200 and response.json()["type"] == "message"


# --- models -----------------------------------------------------------------------------------------


def test_models_list_and_retrieve_with_the_anthropic_sdk(gateway):
    client = anthropic_client(gateway)
    page = client.models.list()
    models = {model.id: model for model in page}  # auto-pagination stops: has_more is false
    assert page.has_more is False
    assert {"demo", CLAUDE, "gpt-test"} <= set(models)
    assert models[CLAUDE].display_name == "Claude test"
    assert models[CLAUDE].type == "model" and models[CLAUDE].created_at.year >= 2020
    assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    retrieved = client.models.retrieve(CLAUDE)
    assert retrieved.id == CLAUDE and retrieved.display_name == "Claude test"


# --- keep-alive and a client that goes away ----------------------------------------------------------


@pytest.mark.parametrize(("model", "directive"), [(CLAUDE, "hang_after=4"), ("gpt-test", "hang_after=3")])
def test_silent_upstream_gets_ping_events_and_a_leaving_client_closes_it(gateway, model, directive):
    closed_before = gateway.upstream_stats()["closed_by_client"]
    response = requests.post(
        f"{gateway.url}/v1/messages",
        headers={"x-api-key": gateway.key},
        timeout=30,
        stream=True,
        json={
            "model": model,
            "max_tokens": 50,
            "stream": True,
            "messages": hello(f"[fake {directive}] eins"),
        },
    )
    request_id = response.headers["request-id"]
    names = []
    for line in response.iter_lines(chunk_size=1):
        if line.startswith(b"event: "):
            names.append(line[7:].decode())
            if names[-1] == "ping":
                break
    response.close()
    # the ping came after text, while the upstream was silent: the gateway's own keep-alive
    assert names[0] == "message_start" and names.index("content_block_delta") < names.index("ping")
    wait_for(lambda: gateway.upstream_stats()["closed_by_client"] > closed_before)
    row = wait_for(lambda: gateway.log_row(request_id))
    assert row["status"] == 499 and row["endpoint"] == "messages"
