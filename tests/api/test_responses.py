"""POST /v1/responses against the live gateway: the openai SDK's client.responses.create and .stream()
through the fake OpenAI-style upstream, Azure and the demo model; what went upstream; usage and the
request log; every prefix."""
from __future__ import annotations

import json

import openai
import pytest
from api_helpers import raw_post, wait_for
from support.responses_sdk import validate_response

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
               "required": ["city", "days"], "additionalProperties": False}


def upstream_chat_request(gateway) -> dict:
    request = gateway.last_upstream_request()
    assert request["path"].endswith("/chat/completions")
    return request["json"]


def test_plain_response_from_the_fake_upstream(gateway, client):
    raw = client.responses.with_raw_response.create(model="gpt-test", input="Say hello")
    response = raw.parse()
    assert response.object == "response" and response.status == "completed" and response.id.startswith("resp_")
    assert response.model == "gpt-test"
    assert response.output_text == "This is the fake upstream answering your request"
    assert [item.type for item in response.output] == ["message"]
    assert response.output[0].role == "assistant" and response.output[0].status == "completed"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (2, 8, 10)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.incomplete_details is None and response.error is None
    assert response.tools == [] and response.tool_choice == "auto" and response.parallel_tool_calls is True
    validate_response(json.loads(raw.http_response.text))
    sent = upstream_chat_request(gateway)
    assert sent["model"] == "gpt-fake" and sent["messages"] == [{"role": "user", "content": "Say hello"}]
    assert "stream" not in sent and "input" not in sent
    assert "x-pforte-dropped-tools" not in raw.headers
    row = gateway.log_row(raw.headers["x-request-id"])
    assert row["endpoint"] == "responses" and row["status"] == 200 and row["model"] == "gpt-test"
    assert (row["input_tokens"], row["output_tokens"]) == (2, 8) and row["usage_estimated"] in (False, 0)
    assert row["stream"] in (False, 0) and row["credits_micro"] == 2 * 1 + 8 * 2


def test_plain_response_from_the_demo_model(client):
    response = client.responses.create(model="demo", input="Hello there")
    assert response.output_text.startswith("Hello from the Pforte demo model. You wrote 2 tokens")
    assert response.model == "demo" and response.status == "completed"
    assert response.usage.input_tokens == 2 and response.usage.output_tokens > 10


def test_instructions_come_first_as_a_system_message(gateway, client):
    response = client.responses.create(model="gpt-test", instructions="Answer in German.", input=[
        {"type": "message", "role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}])
    assert response.instructions == "Answer in German." and response.status == "completed"
    assert upstream_chat_request(gateway)["messages"] == [
        {"role": "system", "content": "Answer in German."}, {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("model", ["demo", "gpt-test"])
def test_function_tool_and_its_output_sent_back(gateway, client, model):
    first = client.responses.create(model=model, input="Weather in Bern?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    assert calls[0].id.startswith("fc_") and calls[0].call_id
    assert set(json.loads(calls[0].arguments)) == {"city"}
    assert first.tools[0].name == "get_weather" and first.tools[0].type == "function"
    history = [{"role": "user", "content": "Weather in Bern?"}, calls[0].model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 degrees"}]
    second = client.responses.create(model=model, input=history, tools=[WEATHER])
    assert second.status == "completed" and second.output[0].type == "message"
    if model == "demo":
        assert second.output_text.startswith("The tool answered: \u201cSunny, 21 degrees\u201d.")
    else:
        sent = upstream_chat_request(gateway)
        assert sent["messages"][1:] == [
            {"role": "assistant", "content": None, "tool_calls": [{"id": calls[0].call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": calls[0].arguments}}]},
            {"role": "tool", "tool_call_id": calls[0].call_id, "content": "Sunny, 21 degrees"}]
        assert sent["tools"] == [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER["parameters"],
            "strict": True}}]


def test_text_format_json_schema(gateway, client):
    text = {"format": {"type": "json_schema", "name": "forecast", "schema": CITY_SCHEMA, "strict": True}}
    response = client.responses.create(model="demo", input="Plan a trip to Basel", text=text)
    assert json.loads(response.output_text) == {"city": "Basel", "days": 1}
    assert response.text.format.type == "json_schema" and response.text.format.name == "forecast"
    client.responses.create(model="gpt-test", input="Plan a trip", text=text)
    assert upstream_chat_request(gateway)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "forecast", "schema": CITY_SCHEMA, "strict": True}}


def test_parse_with_a_pydantic_model(client):
    from pydantic import BaseModel

    class Trip(BaseModel):
        city: str
        days: int

    parsed = client.responses.parse(model="demo", input="A trip to Chur", text_format=Trip)
    assert parsed.output_parsed == Trip(city="Chur", days=1)


def test_max_output_tokens_hit_is_incomplete(gateway, client):
    raw = client.responses.with_raw_response.create(model="demo", input="Tell me a long story", max_output_tokens=3)
    response = raw.parse()
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Hello from the" and response.usage.output_tokens == 3
    assert response.max_output_tokens == 3 and response.output[0].status == "incomplete"
    assert gateway.log_row(raw.headers["x-request-id"])["output_tokens"] == 3
    client.responses.create(model="gpt-test", input="Hi", max_output_tokens=7)
    assert upstream_chat_request(gateway)["max_tokens"] == 7


@pytest.mark.parametrize("model", ["gpt-test", "demo", "azure-test"])
def test_stream_helper_gives_the_plain_answer(gateway, client, model):
    plain = client.responses.create(model=model, input="Stream this please")
    with client.responses.stream(model=model, input="Stream this please") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == plain.output_text and len(deltas) > 3
    assert final.status == "completed" and final.model == model
    assert (final.usage.input_tokens, final.usage.output_tokens) == (plain.usage.input_tokens,
                                                                     plain.usage.output_tokens)
    if model != "demo":
        sent = upstream_chat_request(gateway)
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_streamed_tool_call(client):
    with client.responses.stream(model="gpt-test", input="Weather?", tools=[WEATHER]) as stream:
        names = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in names and "response.function_call_arguments.done" in names
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id == "call_fake1"
    assert call.parsed_arguments == {"city": "Berlin"}


def test_stream_usage_is_recorded_from_the_usage_chunk(gateway, client):
    raw = client.responses.with_raw_response.create(model="gpt-test", input="Count me", stream=True)
    events = list(raw.parse())
    assert events[-1].type == "response.completed" and events[-1].response.usage.output_tokens == 8
    row = wait_for(lambda: gateway.log_row(raw.headers["x-request-id"]))
    assert row["endpoint"] == "responses" and row["stream"] in (True, 1) and row["ttfb_ms"] is not None
    assert (row["input_tokens"], row["output_tokens"]) == (2, 8) and row["usage_estimated"] in (False, 0)


def test_without_upstream_usage_the_tokens_are_estimated(gateway, client):
    raw = client.responses.with_raw_response.create(model="gpt-test", input="[fake no_usage] hi")
    response = raw.parse()
    assert response.usage.output_tokens > 0 and response.usage.input_tokens > 0
    row = gateway.log_row(raw.headers["x-request-id"])
    assert row["usage_estimated"] in (True, 1) and row["output_tokens"] == response.usage.output_tokens
    streamed = client.responses.with_raw_response.create(model="gpt-test", input="[fake no_usage] hi", stream=True)
    final = list(streamed.parse())[-1].response
    assert final.usage.output_tokens == 8  # one token per chunk of text
    row = wait_for(lambda: gateway.log_row(streamed.headers["x-request-id"]))
    assert row["usage_estimated"] in (True, 1) and row["output_tokens"] == 8


@pytest.mark.parametrize("prefix", ["/v1", "/api/openai-compat/v1", "/api/v1", "", "/v1/v1"])
def test_every_api_prefix(gateway, prefix):
    response = gateway.post(f"{prefix}/responses", {"model": "demo", "input": "hi"})
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "response"


def test_raw_event_stream_bytes(gateway):
    conn, response = raw_post(gateway.url, "/v1/responses", {"model": "gpt-test", "stream": True, "input": "Hi"},
                              gateway.key, headers={"Accept": "text/event-stream"})
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Cache-Control") == "no-cache" and response.getheader("X-Accel-Buffering") == "no"
    assert response.getheader("x-request-id").startswith("req_")
    body = response.read()  # returns at EOF: the stream is closed after its last event
    conn.close()
    assert body.startswith(b"event: response.created\ndata: {\"type\":\"response.created\"")
    assert body.endswith(b"\n\n") and b"[DONE]" not in body and b"\r" not in body
    frames = body[:-2].split(b"\n\n")
    names = []
    for number, frame in enumerate(frames):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: {")
        data = json.loads(data_line[6:])
        assert data["type"].encode() == event_line[7:] and data["sequence_number"] == number
        names.append(data["type"])
    assert names[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert names[4:12] == ["response.output_text.delta"] * 8
    assert names[12:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    completed = json.loads(frames[-1].split(b"\n")[1][6:])["response"]
    validate_response(completed)
    assert completed["status"] == "completed" and completed["model"] == "gpt-test"
    assert completed["usage"]["total_tokens"] == 1 + 8


def test_bad_requests_are_400_naming_the_field(gateway):
    for body, param in [({"input": "hi"}, "model"), ({"model": "demo"}, "input"),
                        ({"model": "demo", "input": 5}, "input"),
                        ({"model": "demo", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
                        ({"model": "demo", "input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
                        ({"model": "demo", "input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type")]:
        response = gateway.post("/v1/responses", body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_request", param)


def test_previous_response_id_is_refused_since_no_conversation_is_kept(gateway, client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="demo", input="And then?", previous_response_id="resp_abc")
    assert caught.value.param == "previous_response_id" and "does not keep conversations" in caught.value.message


def test_unknown_model_is_404_in_the_openai_shape(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="hi")
    assert caught.value.code == "model_not_found"


def test_embeddings_only_model_does_not_offer_responses(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="embed-test", input="hi")
    assert caught.value.param == "model"
