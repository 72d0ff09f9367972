"""POST /v1/responses through an Anthropic upstream (the fake Anthropic upstream): the Responses request
becomes a chat request, the anthropic provider turns it into a Messages request, and the answer or the
event stream comes back as a Responses object or Responses events."""
from __future__ import annotations

import json

import pytest
from anthropic_catalog import (  # noqa: F401  (anthropic_catalog is a fixture)
    CLAUDE,
    anthropic_catalog,
    upstream_messages_requests,
)
from api_helpers import raw_post, wait_for
from support.responses_sdk import frames, validate_response

pytestmark = pytest.mark.usefixtures("anthropic_catalog")

WEATHER = {"type": "function", "name": "weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def sent_message(gateway) -> dict:
    return upstream_messages_requests(gateway)[-1]["json"]


def system_text(message: dict) -> str:
    system = message.get("system") or ""
    return system if isinstance(system, str) else " ".join(block["text"] for block in system)


def test_plain_response(gateway, client):
    raw = client.responses.with_raw_response.create(model=CLAUDE, input="Hallo Welt")
    response = raw.parse()
    assert response.output_text == "Echo: Hallo Welt" and response.status == "completed"
    assert response.model == CLAUDE
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 3)
    validate_response(json.loads(raw.http_response.text))
    sent = sent_message(gateway)
    assert sent["model"] == "claude-fake" and sent["messages"] == [{"role": "user", "content": "Hallo Welt"}]
    row = gateway.log_row(raw.headers["x-request-id"])
    assert row["endpoint"] == "responses" and (row["input_tokens"], row["output_tokens"]) == (2, 3)
    assert row["credits_micro"] == 2 * 3 + 3 * 15


def test_instructions_become_the_system_prompt(gateway, client):
    response = client.responses.create(model=CLAUDE, instructions="Sei kurz.", input="Hallo")
    assert response.output_text == "Echo: Hallo"
    assert system_text(sent_message(gateway)) == "Sei kurz."


def test_function_tool_and_its_output_sent_back(gateway, client):
    first = client.responses.create(model=CLAUDE, input="Weather in Bonn?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.name == "weather" and json.loads(call.arguments) == {"city": "Bonn"}
    assert sent_message(gateway)["tools"][0]["name"] == "weather"
    second = client.responses.create(model=CLAUDE, tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Bonn?"}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "12 °C"}])
    assert second.output_text == "Tool said: 12 °C"


def test_text_format_json_schema_reaches_the_upstream(gateway, client):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response = client.responses.create(model=CLAUDE, input="Hallo", text={
        "format": {"type": "json_schema", "name": "reply", "schema": schema}})
    assert response.status == "completed" and response.text.format.type == "json_schema"
    assert json.dumps(schema) in system_text(sent_message(gateway))  # the Anthropic translation's instruction


def test_max_output_tokens_hit_is_incomplete(gateway, client):
    response = client.responses.create(model=CLAUDE, input="eins zwei drei vier fuenf", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: eins"
    assert sent_message(gateway)["max_tokens"] == 2


def test_stream_helper(gateway, client):
    with client.responses.stream(model=CLAUDE, input="eins zwei drei") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: eins zwei drei"
    assert final.model == CLAUDE and (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert sent_message(gateway)["stream"] is True


def test_streamed_tool_call_in_raw_events(gateway):
    conn, response = raw_post(gateway.url, "/v1/responses", {"model": CLAUDE, "stream": True, "tools": [WEATHER],
                                                             "input": "Weather in Bonn?"}, gateway.key)
    assert response.status == 200
    data = response.read()
    conn.close()
    events = frames(data)
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in names and names[-1] == "response.completed"
    final = events[-1][1]["response"]
    validate_response(final)
    assert final["output"][0]["name"] == "weather" and json.loads(final["output"][0]["arguments"]) == {"city": "Bonn"}
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["endpoint"] == "responses" and row["status"] == 200


def test_upstream_error_event_mid_stream_is_response_failed(gateway):
    conn, response = raw_post(gateway.url, "/v1/responses", {"model": CLAUDE, "stream": True,
                                                             "input": "[fake error_after=4] eins zwei"}, gateway.key)
    data = response.read()
    conn.close()
    events = frames(data)
    assert events[0][0] == "response.created" and events[-1][0] == "response.failed"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error" and failed["error"]["message"]
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (503, "upstream_unavailable")


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_overloaded_before_the_answer_is_503_as_on_chat(gateway, stream):
    response = gateway.post("/v1/responses", {"model": CLAUDE, "input": "[fake status=529] hi", "stream": stream})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
