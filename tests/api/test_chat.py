"""Chat completions, legacy completions and embeddings through the official openai SDK (non-streaming)."""
from __future__ import annotations

import base64
import json
import struct

import openai
import pytest
import requests
from api_helpers import user


def test_plain_chat_answers_with_the_public_model_id_and_full_usage(gateway, client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=user("Hello there"))
    completion = raw.parse()
    assert completion.model == "gpt-test"  # the upstream said gpt-fake
    assert completion.choices[0].message.content.startswith("This is the fake upstream")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 2
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    assert completion._request_id == raw.headers["x-request-id"]
    upstream = gateway.last_upstream_request()
    assert upstream["json"]["model"] == "gpt-fake"
    assert upstream["headers"]["authorization"] == "Bearer sk-upstream-secret"
    assert "stream_options" not in upstream["json"]


def test_strict_response_validation_accepts_the_answer(gateway):
    client = gateway.client(_strict_response_validation=True)
    completion = client.chat.completions.create(model="gpt-test", messages=user("Hi"))
    assert completion.object == "chat.completion"


def test_content_parts_and_system_messages_are_passed_on(gateway, client):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
    ]
    completion = client.chat.completions.create(model="gpt-test", messages=messages, temperature=0.2, seed=7,
                                                max_completion_tokens=50, stop=["\n\n"])
    assert completion.choices[0].message.content
    sent = gateway.last_upstream_request()["json"]
    assert sent["messages"] == messages
    assert sent["temperature"] == 0.2 and sent["seed"] == 7 and sent["max_completion_tokens"] == 50


def test_unknown_fields_and_empty_organization_headers_are_tolerated(gateway):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test", "messages": user("hi"),
                                                     "some_vendor_extra": {"x": 1}},
                            headers={"OpenAI-Organization": "", "OpenAI-Project": ""})
    assert response.status_code == 200, response.text
    assert gateway.last_upstream_request()["json"]["some_vendor_extra"] == {"x": 1}


def test_tool_calls(gateway, client):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    completion = client.chat.completions.create(model="gpt-test", messages=user("Weather in Berlin?"),
                                                tools=tools, tool_choice="auto")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Berlin"}
    follow_up = client.chat.completions.create(model="gpt-test", tools=tools, messages=[
        *user("Weather in Berlin?"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees"},
    ])
    assert follow_up.choices[0].finish_reason == "stop"
    assert follow_up.choices[0].message.content


def test_json_mode(client):
    completion = client.chat.completions.create(model="gpt-test", messages=user("Give me JSON"),
                                                response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_demo_model_answers_without_upstream_and_counts_honestly(client):
    completion = client.chat.completions.create(model="demo", messages=user("Guten Tag, Pforte!"))
    text = completion.choices[0].message.content
    assert "demo" in text.lower()
    assert completion.usage.prompt_tokens == 5  # Guten · Tag · , · Pforte · !
    again = client.chat.completions.create(model="demo", messages=user("Guten Tag, Pforte!"))
    assert again.choices[0].message.content == text


def test_demo_model_calls_tools(client):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}}}}]
    completion = client.chat.completions.create(model="demo", messages=user("find permits"), tools=tools)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"query": "permits", "limit": 1}


def test_model_id_with_slash_and_colon(gateway, client):
    completion = client.chat.completions.create(model="org/model:v1", messages=user("hi"))
    assert completion.model == "org/model:v1"
    assert gateway.last_upstream_request()["json"]["model"] == "org/model:tag"


def test_azure_connection_uses_deployment_url_api_version_and_api_key(gateway, client):
    completion = client.chat.completions.create(model="azure-test", messages=user("hi"))
    assert completion.model == "azure-test"
    sent = gateway.last_upstream_request()
    assert sent["path"] == "/openai/deployments/dep-fake/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == "sk-upstream-secret"
    assert "authorization" not in sent["headers"]


def test_legacy_completions(gateway, client):
    completion = client.completions.create(model="gpt-test", prompt="Once upon a time", max_tokens=16)
    assert completion.object == "text_completion"
    assert completion.model == "gpt-test"
    assert completion.choices[0].text.strip()
    assert completion.usage.prompt_tokens == 4
    chunks = list(client.completions.create(model="gpt-test", prompt="Once", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip().startswith("This is")
    assert all(c.model == "gpt-test" and c.object == "text_completion" for c in chunks)


def test_embeddings_default_base64_and_float_agree(gateway, client):
    default = client.embeddings.create(model="embed-test", input=["first text", "second"])
    assert gateway.last_upstream_request()["json"].get("encoding_format") is None
    floats = client.embeddings.create(model="embed-test", input=["first text", "second"], encoding_format="float")
    assert default.model == floats.model == "embed-test"
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data, strict=True):
        assert len(a.embedding) == 8
        assert a.embedding == [struct.unpack("<f", struct.pack("<f", v))[0] for v in b.embedding]
    assert floats.usage.prompt_tokens == 3


def test_embeddings_base64_on_the_wire(gateway):
    response = gateway.post("/v1/embeddings", {"model": "embed-test", "input": "abc", "encoding_format": "base64"})
    item = response.json()["data"][0]
    assert isinstance(item["embedding"], str)
    assert len(base64.b64decode(item["embedding"])) == 8 * 4


def test_a_model_offers_only_its_capabilities(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="embed-test", messages=user("hi"))
    assert caught.value.code == "invalid_request" and caught.value.param == "model"


def test_upstream_without_usage_is_estimated(gateway, client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=user("[fake no_usage] hello"))
    completion = raw.parse()
    assert completion.usage.completion_tokens > 0  # an estimate, sent in full all the same
    assert completion.usage.prompt_tokens_details is not None
    row = gateway.log_row(raw.headers["x-request-id"])
    assert row["usage_estimated"] in (True, 1)


def test_non_json_api_answers_are_never_html(gateway):
    response = requests.get(f"{gateway.url}/v1/nothing-here", timeout=5)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
