"""The requests n8n's OpenAI Chat Model node (version 1.3 on, "Use Responses API" on, its default) sends to
/v1/responses, replayed as raw HTTP against the live gateway, plain and streamed, with an agent's tool turn.

The node hands its options to LangChain JS `ChatOpenAI({useResponsesApi: true, supportsStrictToolCalling:
false, modelKwargs})`, whose invocation params give the body: `text` is `{}` when no response format is
chosen (format and verbosity are undefined), tools are flat functions with `strict: false`, system and user
messages are items with string content. For the next turn LangChain rebuilds the assistant's tool call as a
`function_call` item with the `fc_` id it saw (plain) or sends the streamed `response.output` items back as
they came (streamed), followed by a `function_call_output`. Its parser reads `error`, `output` (message parts
`output_text` with an `annotations` list, `function_call` with `call_id`, `name`, JSON `arguments`, `id`) and
the usage with its details; streamed it reads `response.created`, `response.output_item.added`,
`response.output_text.delta` (`content_index`), `response.function_call_arguments.delta` (`output_index`)
and `response.completed`.
"""
from __future__ import annotations

import json

from support.responses_sdk import frames

SYSTEM = {"type": "message", "role": "system", "content": "You are a helpful assistant"}
QUESTION = {"type": "message", "role": "user", "content": "What is the weather in Bern?"}
TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"},
        "strict": False}
HEADERS = {"Accept": "application/json", "User-Agent": "OpenAI/JS 6.9.1", "X-Stainless-Lang": "js",
           "X-Stainless-Retry-Count": "0"}


def n8n_body(input_items: list, stream: bool) -> dict:
    return {"model": "gpt-test", "stream": stream, "tools": [TOOL], "text": {}, "input": input_items}


def post(gateway, body: dict):
    response = gateway.post("/v1/responses", body, headers={**HEADERS, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response


def assert_parseable(response: dict) -> None:
    """What LangChain's convertResponsesMessageToAIMessage reads from a response object."""
    assert response["object"] == "response" and response["status"] == "completed" and response["error"] is None
    assert response["id"].startswith("resp_") and response["model"] == "gpt-test"
    assert isinstance(response["created_at"], int) and response["incomplete_details"] is None
    for item in response["output"]:
        if item["type"] == "message":
            assert item["id"] and all(part["type"] == "output_text" and part["annotations"] == []
                                      for part in item["content"])
        else:
            assert item["type"] == "function_call" and item["id"].startswith("fc_")
            assert item["call_id"] and item["name"] == "get_weather" and json.loads(item["arguments"])
    usage = response["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["input_tokens_details"]["cached_tokens"] == 0
    assert usage["output_tokens_details"]["reasoning_tokens"] == 0


def output_text(response: dict) -> str:
    return "".join(part["text"] for item in response["output"] if item["type"] == "message"
                   for part in item["content"])


def test_n8n_agent_turn_plain(gateway):
    first = post(gateway, n8n_body([SYSTEM, QUESTION], stream=False)).json()
    assert_parseable(first)
    [call] = first["output"]
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"city": "Berlin"}
    sent = gateway.last_upstream_request()["json"]
    assert sent["messages"] == [{"role": "system", "content": "You are a helpful assistant"},
                                {"role": "user", "content": "What is the weather in Bern?"}]
    assert sent["tools"][0]["function"]["name"] == "get_weather" and "response_format" not in sent

    rebuilt = {"type": "function_call", "name": call["name"], "arguments": call["arguments"],
               "call_id": call["call_id"], "id": call["id"]}
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "Sunny, 21 degrees"}
    second = post(gateway, n8n_body([SYSTEM, QUESTION, rebuilt, result], stream=False)).json()
    assert_parseable(second)
    assert [item["type"] for item in second["output"]] == ["message"]
    assert output_text(second) == "This is the fake upstream answering your request"
    sent = gateway.last_upstream_request()["json"]
    assert sent["messages"][2]["tool_calls"][0]["id"] == call["call_id"]
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": call["call_id"], "content": "Sunny, 21 degrees"}


def events_of(response) -> list[tuple[str, dict]]:
    assert response.headers["content-type"].startswith("text/event-stream")
    return frames(response.content)


def test_n8n_agent_turn_streamed(gateway):
    events = events_of(post(gateway, n8n_body([SYSTEM, QUESTION], stream=True)))
    names = [name for name, _ in events]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    created = events[0][1]["response"]
    assert created["id"].startswith("resp_") and created["model"] == "gpt-test"
    [added] = [data for name, data in events if name == "response.output_item.added"]
    assert added["item"]["type"] == "function_call" and added["item"]["name"] == "get_weather"
    assert added["item"]["call_id"] and added["item"]["id"].startswith("fc_")
    deltas = [data for name, data in events if name == "response.function_call_arguments.delta"]
    assert {data["output_index"] for data in deltas} == {added["output_index"]}
    assert json.loads("".join(data["delta"] for data in deltas)) == {"city": "Berlin"}
    completed = events[-1][1]["response"]
    assert_parseable(completed)
    assert completed["id"] == created["id"]

    result = {"type": "function_call_output", "call_id": added["item"]["call_id"], "output": "Sunny, 21 degrees"}
    events = events_of(post(gateway, n8n_body([SYSTEM, QUESTION, *completed["output"], result], stream=True)))
    [message] = [data["item"] for name, data in events if name == "response.output_item.added"]
    assert message["type"] == "message" and message["id"]
    deltas = [data for name, data in events if name == "response.output_text.delta"]
    assert {data["content_index"] for data in deltas} == {0}
    text = "".join(data["delta"] for data in deltas)
    assert text == "This is the fake upstream answering your request"
    name, data = events[-1]
    assert name == "response.completed"
    assert_parseable(data["response"])
    assert output_text(data["response"]) == text
    sent = gateway.last_upstream_request()["json"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["arguments"] == completed["output"][0]["arguments"]
