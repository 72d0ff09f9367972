"""POST /v1/responses through a connection whose upstream offers the Responses API itself (`pforte connections
add/update … --responses-api`): the request goes to the fake upstream's /v1/responses unchanged apart from
model, output cap, store and what Pforte keeps itself (stored conversations, hosted tools); streams are
relayed byte for byte; usage, limits, the budget, assistants and stored responses work as on the translated
path, and failures before and during a stream are answered as there."""
from __future__ import annotations

import json

import openai
import pytest
import requests
from api_helpers import raw_post, wait_for
from support.responses_sdk import frames, validate_response, validated

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
NATIVE = "native-test"


def served_model_ids(gateway) -> set[str]:
    response = requests.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {gateway.key}"},
                            timeout=10)
    return {model["id"] for model in response.json()["data"]}


@pytest.fixture(scope="module")
def native(gateway):
    """native-test: an OpenAI-style connection added with --responses-api; azure-native: an Azure connection
    (api-version 2024-10-21, too old for the Responses API) switched on with `connections update`;
    translated-test: the same fake upstream without the flag."""
    cli = gateway.server.setup_cli
    cli("connections", "add", "--name", "fake-native", "--kind", "openai", "--base-url",
        f"{gateway.upstream.url}/v1", "--api-key-env", "FAKE_UPSTREAM_KEY", "--responses-api")
    cli("models", "add", "--id", NATIVE, "--connection", "fake-native", "--upstream-model", "gpt-fake",
        "--input-price", "1", "--output-price", "2")
    cli("connections", "add", "--name", "fake-azure-native", "--kind", "azure", "--base-url",
        gateway.upstream.url, "--api-key-env", "FAKE_UPSTREAM_KEY", "--api-version", "2024-10-21")
    cli("connections", "update", "fake-azure-native", "--responses-api")
    cli("models", "add", "--id", "azure-native", "--connection", "fake-azure-native", "--upstream-model", "dep-fake")
    cli("assistants", "add", "--id", "native-helper", "--model", NATIVE, "--instructions", "Be kind.",
        "--max-output-tokens", "77", "--temperature", "0.3")
    wait_for(lambda: {NATIVE, "azure-native", "native-helper"} <= served_model_ids(gateway))
    return gateway


def last_request(gateway) -> dict:
    return gateway.last_upstream_request()


def native_requests(gateway) -> int:
    return gateway.upstream_stats()["by_path"].get("/v1/responses", 0)


def read_stream(gateway, body: dict, headers: dict | None = None, key: str | None = None):
    conn, response = raw_post(gateway.url, "/v1/responses", {**body, "stream": True}, key or gateway.key, headers)
    assert response.status == 200, response.read()
    data = response.read()
    conn.close()
    return response, data


def without_pings(data: bytes) -> bytes:
    return b"".join(block + b"\n\n" for block in data.split(b"\n\n") if block and not block.startswith(b":"))


def test_the_request_goes_to_the_upstreams_responses_unchanged_but_model_and_store(native):
    client = native.client()
    body = {"model": NATIVE, "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.2,
            "input": [{"role": "developer", "content": "Answer in German."},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hallo"}]}],
            "metadata": {"case": "4711"}, "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "low", "summary": "auto"}, "text": {"format": {"type": "text"}},
            "prompt_cache_key": "session-1", "user": "clerk-7", "tools": [WEATHER], "tool_choice": "none",
            "parallel_tool_calls": False, "truncation": "auto"}
    raw = client.responses.with_raw_response.create(**body)
    response = raw.parse()
    sent = last_request(native)
    assert sent["path"] == "/v1/responses"
    assert sent["json"] == {**body, "model": "gpt-fake", "store": False}
    assert sent["headers"]["authorization"] == "Bearer sk-upstream-secret"  # the connection's key, not the client's
    validate_response(json.loads(raw.http_response.text))
    assert response.model == NATIVE and response.status == "completed"
    assert response.output_text == "This is the fake upstream answering your request"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (6, 8)
    row = wait_for(lambda: native.log_row(raw.headers["x-request-id"]))
    assert (row["endpoint"], row["status"], row["model"]) == ("responses", 200, NATIVE)
    assert (row["input_tokens"], row["output_tokens"], bool(row["usage_estimated"])) == (6, 8, False)
    assert "x-pforte-dropped-tools" not in raw.headers


def test_store_true_is_never_forwarded(native):
    native.client().responses.create(model=NATIVE, input="hi", store=True)
    assert last_request(native)["json"] == {"model": "gpt-fake", "input": "hi", "store": False}


def test_the_stream_is_relayed_byte_for_byte(native):
    before = native.upstream_stats()["streams_completed"]
    response, data = read_stream(native, {"model": NATIVE, "input": "Hallo"})
    assert native.upstream_stats()["streams_completed"] == before + 1
    sent = last_request(native)
    assert sent["json"] == {"model": "gpt-fake", "input": "Hallo", "stream": True, "store": False}
    assert without_pings(data) == sent["stream_sent"].encode()  # what the fake upstream wrote, unchanged
    events = validated(without_pings(data))
    assert events[0].type == "response.created" and events[0].response.model == "gpt-fake"
    assert events[-1].type == "response.completed"
    usage = events[-1].response.usage
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["stream"], bool(row["usage_estimated"])) == (200, True, False)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens) == (1, 8)


def test_the_sdk_stream_helper_accepts_the_relayed_events(native):
    with native.client().responses.stream(model=NATIVE, input="Hallo", tools=[WEATHER]) as stream:
        names = [event.type for event in stream]
        final = stream.get_final_response()
    assert last_request(native)["path"] == "/v1/responses"
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in names
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {
        "city": "Berlin"}


def test_a_tool_call_round_trip(native):
    client = native.client()
    first = client.responses.create(model=NATIVE, input="Weather in Bonn?", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call"
    history = [{"role": "user", "content": "Weather in Bonn?"},
               {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    answer = client.responses.create(model=NATIVE, input=history, tools=[WEATHER])
    assert answer.output_text == "Tool said: sunny"
    assert last_request(native)["json"] == {"model": "gpt-fake", "input": history, "tools": [WEATHER],
                                            "store": False}


def test_previous_response_id_is_expanded_locally_and_the_turns_are_stored(native):
    key = native.create_key("native-keeping", "--keep-conversations")
    client = native.client(key["key"])
    raw = client.responses.with_raw_response.create(model=NATIVE, instructions="Be brief.", input="one")
    first, (answer_one,) = raw.parse(), json.loads(raw.http_response.text)["output"]
    assert last_request(native)["json"] == {"model": "gpt-fake", "instructions": "Be brief.", "input": "one",
                                            "store": False}
    second = client.responses.create(model=NATIVE, input="two", previous_response_id=first.id)
    sent = last_request(native)["json"]
    assert "previous_response_id" not in sent and sent["store"] is False and "instructions" not in sent
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}], "status": "completed"},
        {key_: value for key_, value in answer_one.items() if key_ != "id"},
        {"role": "user", "content": "two"}]
    assert second.previous_response_id == first.id and second.model == NATIVE

    with client.responses.stream(model=NATIVE, input="three", previous_response_id=second.id) as stream:
        third = stream.get_final_response()
    texts = [part if isinstance(part, str) else part["text"] for item in last_request(native)["json"]["input"]
             for part in ([item["content"]] if isinstance(item["content"], str) else item["content"])]
    assert texts == ["one", first.output_text, "two", second.output_text, "three"]

    stored = client.responses.retrieve(third.id)
    assert stored.output_text == third.output_text and stored.previous_response_id == second.id
    assert stored.model == NATIVE
    assert client.responses.retrieve(first.id).output_text == first.output_text
    items = list(client.responses.input_items.list(third.id))
    assert [item.content[0].text for item in items] == ["three"]


def test_previous_response_id_needs_a_key_that_keeps_conversations(native):
    before = native_requests(native)
    with pytest.raises(openai.BadRequestError) as caught:
        native.client().responses.create(model=NATIVE, input="two", previous_response_id="resp_" + "0" * 48)
    assert caught.value.code == "conversations_not_kept"
    assert native_requests(native) == before


def test_hosted_tools_are_left_out_and_named(native):
    tools = [WEATHER, {"type": "web_search"}, {"type": "namespace", "name": "mcp__docs", "tools": []}]
    response, data = read_stream(native, {"model": NATIVE, "input": "Look it up", "tools": tools,
                                          "tool_choice": {"type": "web_search"}})
    assert response.getheader("x-pforte-dropped-tools") == "web_search, namespace:mcp__docs"
    sent = last_request(native)["json"]
    assert sent["tools"] == [WEATHER] and "tool_choice" not in sent
    assert frames(data)[-1][0] == "response.completed"


def test_an_assistant_on_a_native_connection_sends_its_instructions_and_defaults(native):
    key = native.create_key("native-assistant", "--assistant", "native-helper")
    answer = native.client(key["key"]).responses.create(model="anything", instructions="Use short words.",
                                                        input="hi")
    assert last_request(native)["json"] == {
        "model": "gpt-fake", "instructions": "Be kind.\n\nUse short words.", "input": "hi", "temperature": 0.3,
        "max_output_tokens": 77, "store": False}
    assert answer.model == "native-helper"


def test_the_budget_cap_goes_upstream_as_max_output_tokens(native):
    key = native.create_key("native-budget", "--quota", "5")
    client = native.client(key["key"])
    client.responses.create(model=NATIVE, input="hi")
    assert last_request(native)["json"]["max_output_tokens"] == 4096  # the model's cap, reserved and sent
    client.responses.create(model=NATIVE, input="hi", max_output_tokens=3)
    sent = last_request(native)["json"]
    assert sent["max_output_tokens"] == 3 and "max_tokens" not in sent


def test_an_output_cap_hit_is_incomplete_and_settled(native):
    response, data = read_stream(native, {"model": NATIVE, "input": "hi", "max_output_tokens": 3})
    events = validated(without_pings(data))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["output_tokens"], bool(row["usage_estimated"])) == (200, 3, False)


def test_used_up_quota_is_402_and_nothing_goes_upstream(native):
    key = native.create_key("native-broke", "--quota", "0")
    before = native_requests(native)
    response = native.post("/v1/responses", {"model": NATIVE, "input": "hi", "stream": True}, key=key["key"])
    assert response.status_code == 402 and response.json()["error"]["code"] == "insufficient_quota"
    assert native_requests(native) == before


def test_used_up_request_limit_is_429(native):
    key = native.create_key("native-monthly", "--monthly-requests", "1")
    client = native.client(key["key"])
    before = native_requests(native)
    client.responses.create(model=NATIVE, input="hi")
    assert native_requests(native) == before + 1
    before += 1
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=NATIVE, input="again")
    assert caught.value.code == "rate_limit_exceeded"
    assert native_requests(native) == before


@pytest.mark.parametrize("directive, status, code", [
    ("status=500", 502, "upstream_error"),
    ("status=503", 503, "upstream_unavailable"),
    ("status=429", 429, "rate_limit_exceeded"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failure_before_the_answer_is_a_json_error(native, directive, status, code, stream):
    response = native.post("/v1/responses", {"model": NATIVE, "input": f"[fake {directive}] hi", "stream": stream})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert last_request(native)["path"] == "/v1/responses"
    row = native.log_row(response.headers["x-request-id"])
    assert (row["endpoint"], row["status"], row["error_code"]) == ("responses", status, code)


def test_the_upstreams_response_failed_is_relayed_and_settled(native):
    response, data = read_stream(native, {"model": NATIVE, "input": "[fake error_after=5] hi"})
    assert without_pings(data) == last_request(native)["stream_sent"].encode()
    events = validated(without_pings(data))
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (502, "upstream_error")
    assert (row["input_tokens"], row["output_tokens"], bool(row["usage_estimated"])) == (3, 0, False)


def test_the_upstreams_error_event_is_relayed_and_settled_as_a_failure(native):
    response, data = read_stream(native, {"model": NATIVE, "input": "[fake error_event_after=5] hi"})
    assert without_pings(data) == last_request(native)["stream_sent"].encode()
    events = validated(without_pings(data))
    assert events[-1].type == "error" and events[-1].code == "server_error"
    assert "response.failed" not in [event.type for event in events]  # no second ending of our own
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (502, "upstream_error")


@pytest.mark.parametrize("directive", ["error_after=3", "error_event_after=3"])
def test_an_upstream_failure_never_shows_the_connections_key(native, directive):
    _response, data = read_stream(native, {"model": NATIVE, "input": f"[fake {directive} echo_key=1] hi"})
    assert b"sk-upstream-secret" in last_request(native)["stream_sent"].encode()  # the upstream did echo it
    assert b"sk-upstream-secret" not in data and b"Bearer [redacted]" in data


def test_a_stream_broken_off_ends_with_our_response_failed(native):
    response, data = read_stream(native, {"model": NATIVE, "input": "[fake die_after=6] hi"})
    events = validated(without_pings(data))  # sequence numbers 0, 1, … go on through our own event
    assert [event.type for event in events[:6]] == ["response.created", "response.in_progress",
                                                     "response.output_item.added", "response.content_part.added",
                                                     "response.output_text.delta", "response.output_text.delta"]
    assert events[-1].type == "response.failed" and len(events) == 7
    failed = events[-1].response
    assert failed.id == events[0].response.id and failed.status == "failed"
    assert failed.error.code == "server_error" and "Traceback" not in data.decode()
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"], bool(row["usage_estimated"])) == (502, "upstream_error", True)
    assert row["output_tokens"] == 2  # one per text delta that came through


def test_the_sdk_stream_ends_with_the_failed_event(native):
    with native.client().responses.stream(model=NATIVE, input="[fake die_after=4] hi") as stream:
        last = list(stream)[-1]
    assert last_request(native)["path"] == "/v1/responses"
    assert last.type == "response.failed" and last.response.error.code == "server_error"


def test_azure_gets_its_responses_path_with_a_recent_api_version(native):
    answer = native.client().responses.create(model="azure-native", input="hi")
    sent = last_request(native)
    assert sent["path"] == "/openai/responses" and sent["query"] == {"api-version": "2025-04-01-preview"}
    assert sent["headers"]["api-key"] == "sk-upstream-secret" and "authorization" not in sent["headers"]
    assert sent["json"] == {"model": "dep-fake", "input": "hi", "store": False}
    assert answer.model == "azure-native" and answer.output_text


def test_turning_the_flag_off_translates_to_chat_again(native):
    cli = native.server.setup_cli
    cli("connections", "add", "--name", "fake-toggle", "--kind", "openai", "--base-url",
        f"{native.upstream.url}/v1", "--responses-api")
    cli("models", "add", "--id", "toggle-test", "--connection", "fake-toggle", "--upstream-model", "gpt-fake")
    client = native.client()
    wait_for(lambda: "toggle-test" in served_model_ids(native))
    client.responses.create(model="toggle-test", input="hi")
    assert last_request(native)["path"] == "/v1/responses"
    cli("connections", "update", "fake-toggle", "--no-responses-api")

    def translated() -> bool:
        client.responses.create(model="toggle-test", input="hi")
        return last_request(native)["path"] == "/v1/chat/completions"

    wait_for(translated)


def test_an_internal_error_mid_stream_is_our_response_failed(native):
    response, data = read_stream(native, {"model": NATIVE, "input": "[fake chunk_delay=0.05] hi"},
                                      {"x-pforte-test-fault": "stream"})
    events = validated(without_pings(data))
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
    assert "injected" not in events[-1].response.error.message and b"Traceback" not in data
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (500, "internal_error")


def test_a_streamed_answer_that_cannot_be_stored_ends_with_response_failed(native):
    """A conversation is capped (1 MiB by default): the turn that would pass the cap is answered by the upstream,
    but the client gets response.failed in place of response.completed, never an answer the next turn would miss."""
    key = native.create_key("native-full", "--keep-conversations")
    client = native.client(key["key"])
    previous, big = None, "x" * 240_000
    for _ in range(4):
        previous = client.responses.create(model=NATIVE, input=big, previous_response_id=previous or openai.omit).id
    before = native_requests(native)
    response, data = read_stream(native, {"model": NATIVE, "input": big, "previous_response_id": previous},
                                      key=key["key"])
    assert native_requests(native) == before + 1
    events = validated(without_pings(data))
    assert "response.completed" not in [event.type for event in events]
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "invalid_prompt"
    row = wait_for(lambda: native.log_row(response.getheader("x-request-id")))
    assert (row["status"], row["error_code"]) == (400, "conversation_too_large")
    assert row["output_tokens"] == 8 and not row["usage_estimated"]  # the upstream's usage is settled all the same

