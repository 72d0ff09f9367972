"""/v1/openapi.json: a valid OpenAPI 3.1 document, served without a key, that describes what a real
`pforte serve` accepts and answers (responses from the live server are validated against it)."""
from __future__ import annotations

import json

import pytest
import requests
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

# DESIGN.md §6, the contract the docs must show: (status, type, code).
DESIGN_ERRORS = {
    (400, "invalid_request_error", "invalid_request"), (413, "invalid_request_error", "request_too_large"),
    (401, "invalid_request_error", "invalid_api_key"), (401, "invalid_request_error", "expired_api_key"),
    (402, "insufficient_quota", "insufficient_quota"), (403, "permission_error", "scope_not_allowed"),
    (403, "permission_error", "ip_not_allowed"), (403, "permission_error", "model_not_allowed"),
    (404, "invalid_request_error", "model_not_found"), (404, "invalid_request_error", "unknown_url"),
    (429, "rate_limit_error", "rate_limit_exceeded"), (502, "server_error", "upstream_error"),
    (503, "server_error", "upstream_unavailable"), (504, "server_error", "upstream_timeout"),
    (500, "server_error", "internal_error"),
}


def test_document_is_valid_openapi_31_and_needs_no_login_or_setup(client):
    response = client.get("/v1/openapi.json", headers={"Host": "pforte.example:8443"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()
    # not the Host header the client chose: PFORTE_PUBLIC_URL, else the address the server listens on
    assert document["servers"] == [{"url": "http://127.0.0.1:8080/v1"}]
    paths = ("/chat/completions", "/completions", "/embeddings", "/messages", "/responses", "/models",
             "/models/{model}")
    assert set(paths) <= set(document["paths"])


def test_openapi_route_wins_over_the_unknown_route_error(client):
    assert client.get("/v1/openapi.json").status_code == 200
    other = client.get("/v1/openapi.yaml")
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "unknown_url"


def test_error_table_of_the_docs_is_the_design_table(client, owner):
    from app.docs.openapi import ERRORS

    assert {(status, kind, code) for status, kind, code, _ in ERRORS} == DESIGN_ERRORS
    document = client.get("/v1/openapi.json").get_json()
    responses = document["paths"]["/chat/completions"]["post"]["responses"]
    for status, _kind, code in DESIGN_ERRORS:
        assert code in responses[str(status)]["description"]
    html = client.get("/docs").get_data(as_text=True)
    for _status, kind, code in DESIGN_ERRORS:
        assert f"<code>{code}</code>" in html and f"<code>{kind}</code>" in html


# --- against a live server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(demo_server):
    _server, demo = demo_server
    document = requests.get(f"{demo.api}/openapi.json", timeout=10).json()
    return demo, document


def _schema(document: dict, path: str, method: str, status: int, media: str = "application/json") -> dict:
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which is not documented"
    return responses[str(status)]["content"][media]["schema"]


def _validate(document: dict, schema: dict, value) -> None:
    OAS31Validator({**schema, "components": document["components"]}).validate(value)


def _component(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _request(document: dict, path: str) -> dict:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_live_answers_match_the_documented_schemas(live):
    demo, document = live
    auth = {"Authorization": f"Bearer {demo.key}"}

    models = requests.get(f"{demo.api}/models", headers=auth, timeout=10)
    _validate(document, _schema(document, "/models", "get", models.status_code), models.json())
    assert [m["id"] for m in models.json()["data"]] == [demo.model]
    one = requests.get(f"{demo.api}/models/{demo.model}", headers=auth, timeout=10)
    _validate(document, _schema(document, "/models/{model}", "get", one.status_code), one.json())

    body = {"model": demo.model, "messages": [{"role": "user", "content": "Hello there"}], "temperature": 0.5}
    _validate(document, _request(document, "/chat/completions"), body)
    chat = requests.post(f"{demo.api}/chat/completions", json=body, headers=auth, timeout=30)
    assert chat.status_code == 200
    _validate(document, _schema(document, "/chat/completions", "post", 200), chat.json())
    assert chat.headers["x-request-id"]

    completion_body = {"model": demo.model, "prompt": "Say hi", "max_tokens": 5}
    _validate(document, _request(document, "/completions"), completion_body)
    completion = requests.post(f"{demo.api}/completions", json=completion_body, headers=auth, timeout=30)
    _validate(document, _schema(document, "/completions", "post", completion.status_code), completion.json())

    embedding_body = {"model": demo.model, "input": ["a", "b"], "encoding_format": "float"}
    _validate(document, _request(document, "/embeddings"), embedding_body)
    embedding = requests.post(f"{demo.api}/embeddings", json=embedding_body, headers=auth, timeout=30)
    _validate(document, _schema(document, "/embeddings", "post", embedding.status_code), embedding.json())


def test_live_stream_chunks_match_the_chunk_schema(live):
    demo, document = live
    documented = document["paths"]["/chat/completions"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in documented
    response = demo.chat("Stream please", stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    chunks = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: ") and line != "data: [DONE]":
            chunks.append(json.loads(line[len("data: "):]))
    assert len(chunks) > 3
    for chunk in chunks:
        _validate(document, _component("ChatCompletionChunk"), chunk)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


ANTHROPIC = {"anthropic-version": "2023-06-01"}
WEATHER_TOOL = {"name": "get_weather", "description": "The weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _message_body(demo, text: str, **extra) -> dict:
    return {"model": demo.model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def _documented_headers(document: dict, path: str, status: int) -> set[str]:
    return set(document["paths"][path]["post"]["responses"][str(status)]["headers"])


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool_use"])
def test_live_messages_answers_match_the_documented_schemas(live, tools):
    demo, document = live
    extra = {"tools": [WEATHER_TOOL]} if tools else {}
    body = _message_body(demo, "What is the weather in Bonn? Use a tool." if tools else "Hello there", **extra)
    _validate(document, _request(document, "/messages"), body)
    answer = requests.post(f"{demo.api}/messages", json=body, headers={"x-api-key": demo.key, **ANTHROPIC},
                           timeout=30)
    assert answer.status_code == 200
    _validate(document, _schema(document, "/messages", "post", 200), answer.json())
    assert answer.json()["content"][0]["type"] == ("tool_use" if tools else "text")
    assert {"x-request-id", "request-id"} <= _documented_headers(document, "/messages", 200)
    assert answer.headers["request-id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool_use"])
def test_live_messages_stream_events_match_the_event_schema(live, tools):
    demo, document = live
    documented = document["paths"]["/messages"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in documented
    extra = {"tools": [WEATHER_TOOL]} if tools else {}
    body = _message_body(demo, "Weather in Bonn? Use a tool." if tools else "Stream please", stream=True, **extra)
    _validate(document, _request(document, "/messages"), body)
    response = requests.post(f"{demo.api}/messages", json=body, headers={"x-api-key": demo.key, **ANTHROPIC},
                             timeout=30, stream=True)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            event = json.loads(lines["data"])
            assert lines["event"] == event["type"]
            events.append(event)
    types = [event["type"] for event in events]
    assert types[0] == "message_start" and types[-1] == "message_stop" and "content_block_delta" in types
    for event in events:
        _validate(document, _component("AnthropicStreamEvent"), event)
    deltas = {event["delta"]["type"] for event in events if event["type"] == "content_block_delta"}
    assert deltas == ({"input_json_delta"} if tools else {"text_delta"})
    # What the schema refuses (so that the event schema is not vacuous).
    for wrong in ({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
                  {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
                  {"type": "message_start", "message": {"id": "msg_1"}},
                  {"type": "no_such_event"}):
        with pytest.raises(Exception):  # noqa: B017 - any validation error
            _validate(document, _component("AnthropicStreamEvent"), wrong)


def test_live_errors_match_the_documented_error_shape(live):
    demo, document = live
    path = "/chat/completions"
    missing = requests.post(f"{demo.api}{path}", json={"model": demo.model}, timeout=10,
                            headers={"Authorization": f"Bearer {demo.key}"})
    with pytest.raises(Exception):  # noqa: B017 - the documented request schema refuses it too
        _validate(document, _request(document, path), {"model": demo.model})
    cases = [
        (missing, 400, "invalid_request"),
        (demo.chat(key="sk-pf-not-a-real-key"), 401, "invalid_api_key"),
        (demo.chat(model="no-such-model"), 404, "model_not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status
        _validate(document, _schema(document, path, "post", status), response.json())
        assert response.json()["error"]["code"] == code
    message = {"model": "no-such-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    anthropic = requests.post(f"{demo.url}/v1/messages", json=message, timeout=10,
                              headers={"x-api-key": demo.key, "anthropic-version": "2023-06-01"})
    _validate(document, _schema(document, "/messages", "post", anthropic.status_code), anthropic.json())
    assert "request-id" in _documented_headers(document, "/messages", anthropic.status_code)
    assert anthropic.headers["request-id"] == anthropic.headers["x-request-id"]


RESPONSES_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize("tools", [False, True], ids=["text", "function_call"])
def test_live_responses_answers_and_events_match_the_documented_schemas(live, tools):
    demo, document = live
    auth = {"Authorization": f"Bearer {demo.key}"}
    body = {"model": demo.model, "input": "Weather in Bonn?", "instructions": "Be brief.",
            "tools": [RESPONSES_TOOL, {"type": "web_search"}] if tools else []}
    _validate(document, _request(document, "/responses"), body)
    answer = requests.post(f"{demo.api}/responses", json=body, headers=auth, timeout=30)
    assert answer.status_code == 200
    _validate(document, _schema(document, "/responses", "post", 200), answer.json())
    assert answer.json()["output"][0]["type"] == ("function_call" if tools else "message")
    if tools:
        assert answer.headers["x-pforte-dropped-tools"] == "web_search"
        assert "x-pforte-dropped-tools" in _documented_headers(document, "/responses", 200)

    documented = document["paths"]["/responses"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in documented
    streamed = requests.post(f"{demo.api}/responses", json={**body, "stream": True}, headers=auth, timeout=30)
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for block in streamed.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            event = json.loads(lines["data"])
            assert lines["event"] == event["type"]
            events.append(event)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    for event in events:
        _validate(document, _component("ResponseStreamEvent"), event)


def test_responses_errors_are_documented_in_the_openai_shape(live):
    demo, document = live
    answer = requests.post(f"{demo.api}/responses", json={"model": "no-such-model", "input": "hi"},
                           headers={"Authorization": f"Bearer {demo.key}"}, timeout=30)
    assert answer.status_code == 404
    _validate(document, _schema(document, "/responses", "post", 404), answer.json())
