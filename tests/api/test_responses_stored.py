"""Stored Responses against the live gateway, through the openai SDK: `previous_response_id` sends the earlier
turns to the fake upstream (plain and streamed, tool calls included), stored responses are read, listed and
deleted under the id the client saw, and nothing is kept or readable with `store: false`, for a key that
keeps no conversations, for another key, after the key is revoked or past retention."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import openai
import pytest
import requests
from api_helpers import execute, upstream_messages
from support.responses_sdk import validate_response

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


def keeping_client(gateway, name: str, *options: str) -> tuple[dict, openai.OpenAI]:
    key = gateway.create_key(name, "--keep-conversations", *options)
    return key, gateway.client(key["key"])


def stored_of(gateway, key: dict) -> list:
    return gateway.query("SELECT r.public_id, r.body_encrypted FROM stored_responses r JOIN api_keys k "
                         "ON k.id = r.key_id WHERE k.public_id = :key ORDER BY r.id", key=key["id"])


def conversations_of(gateway, key: dict) -> list:
    return gateway.query("SELECT c.public_id, c.items_encrypted FROM conversations c JOIN api_keys k "
                         "ON k.id = c.key_id WHERE k.public_id = :key", key=key["id"])


def get(gateway, path: str, key: str) -> requests.Response:
    return requests.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_three_turns_send_the_earlier_turns_upstream_and_are_stored(gateway):
    key, client = keeping_client(gateway, "responses-three")
    first = client.responses.create(model="gpt-test", instructions="Be brief.", input="one")
    assert first.id.startswith("resp_") and len(first.id) >= len("resp_") + 32
    assert upstream_messages(gateway) == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "one"}]

    second = client.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # Instructions are the request's own: those of an earlier response are not carried over.
    turn_one = [{"role": "user", "content": "one"}, {"role": "assistant", "content": first.output_text}]
    assert first.output_text
    assert upstream_messages(gateway) == [*turn_one, {"role": "user", "content": "two"}]
    assert "previous_response_id" not in gateway.last_upstream_request()["json"]

    third = client.responses.create(model="gpt-test", instructions="Now in German.", previous_response_id=second.id,
                                    input=[{"role": "user", "content": [{"type": "input_text", "text": "three"}]}])
    assert upstream_messages(gateway) == [
        {"role": "system", "content": "Now in German."}, *turn_one, {"role": "user", "content": "two"},
        {"role": "assistant", "content": second.output_text}, {"role": "user", "content": "three"}]

    assert [row["public_id"] for row in stored_of(gateway, key)] == [first.id, second.id, third.id]
    rows = conversations_of(gateway, key)
    assert len(rows) == 1  # one chain, one conversation
    assert "three" not in rows[0]["items_encrypted"] and "Be brief" not in stored_of(gateway, key)[0]["body_encrypted"]

    raw = client.responses.with_raw_response.retrieve(third.id)
    validate_response(json.loads(raw.http_response.text))
    fetched = raw.parse()
    assert fetched.model_dump() == third.model_dump()
    items = list(client.responses.input_items.list(third.id))
    assert [(item.type, item.role, item.content[0].text) for item in items] == [("message", "user", "three")]
    assert items[0].id and items[0].content[0].type == "input_text"
    first_items = client.responses.input_items.list(first.id)
    assert [item.content[0].text for item in first_items.data] == ["one"]
    assert first_items.first_id == first_items.last_id == first_items.data[0].id and not first_items.has_more


def test_streamed_turns_are_stored_under_the_streamed_id_and_continued(gateway):
    _key, client = keeping_client(gateway, "responses-stream")
    events = list(client.responses.create(model="gpt-test", input="streamed one", stream=True))
    created, completed = events[0], events[-1]
    assert created.type == "response.created" and completed.type == "response.completed"
    response_id = completed.response.id
    assert created.response.id == response_id
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert streamed and completed.response.output_text == streamed
    assert client.responses.retrieve(response_id).output_text == streamed

    with client.responses.stream(model="gpt-test", input="streamed two", previous_response_id=response_id) as stream:
        final = stream.get_final_response()
    assert upstream_messages(gateway) == [{"role": "user", "content": "streamed one"},
                                          {"role": "assistant", "content": streamed},
                                          {"role": "user", "content": "streamed two"}]
    third = client.responses.create(model="gpt-test", input="plain three", previous_response_id=final.id)
    assert upstream_messages(gateway)[-3:] == [{"role": "user", "content": "streamed two"},
                                               {"role": "assistant", "content": final.output_text},
                                               {"role": "user", "content": "plain three"}]
    assert client.responses.retrieve(third.id).previous_response_id == final.id


def test_a_tool_call_is_continued_with_only_its_output(gateway):
    _key, client = keeping_client(gateway, "responses-tools")
    first = client.responses.create(model="gpt-test", input="Weather in Bonn?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    answer = client.responses.create(model="gpt-test", tools=[WEATHER], previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert answer.output_text
    assert upstream_messages(gateway) == [
        {"role": "user", "content": "Weather in Bonn?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}]
    (item,) = client.responses.input_items.list(answer.id)
    assert item.type == "function_call_output" and item.output == "sunny" and item.id


def test_input_items_come_in_pages_newest_first_or_in_order(gateway):
    _key, client = keeping_client(gateway, "responses-pages")
    response = client.responses.create(model="gpt-test", input=[
        {"role": "developer", "content": "a"}, {"role": "user", "content": "b"}, {"role": "user", "content": "c"}])
    page = client.responses.input_items.list(response.id, limit=2)
    assert [item.content[0].text for item in page.data] == ["c", "b"] and page.has_more
    assert [item.content[0].text for item in client.responses.input_items.list(response.id, limit=2)] == \
        ["c", "b", "a"]  # the SDK follows has_more with `after`
    ascending = client.responses.input_items.list(response.id, order="asc")
    assert [item.content[0].text for item in ascending.data] == ["a", "b", "c"] and not ascending.has_more
    with pytest.raises(openai.BadRequestError):
        client.responses.input_items.list(response.id, limit=0)


def test_store_false_is_answered_and_not_kept(gateway):
    key, client = keeping_client(gateway, "responses-store-false")
    response = client.responses.create(model="gpt-test", input="forget me", store=False)
    assert response.output_text
    streamed = list(client.responses.create(model="gpt-test", input="forget me too", store=False, stream=True))
    assert streamed[-1].type == "response.completed"
    for response_id in (response.id, streamed[-1].response.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response_id)
        with pytest.raises(openai.NotFoundError) as caught:
            client.responses.create(model="gpt-test", input="and?", previous_response_id=response_id)
        assert caught.value.code == "not_found" and caught.value.param == "previous_response_id"
    assert stored_of(gateway, key) == [] and conversations_of(gateway, key) == []
    response = gateway.post("/v1/responses", {"model": "gpt-test", "input": "hi", "store": "no"}, key=key["key"])
    assert response.status_code == 400 and response.json()["error"]["param"] == "store"


def test_a_key_without_conversations_gets_400_and_stores_nothing(gateway):
    key = gateway.create_key("responses-off", "--no-keep-conversations")
    client = gateway.client(key["key"])
    response = client.responses.create(model="gpt-test", input="hi")  # store defaults to true: ignored
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-test", input="and?", previous_response_id=response.id)
    assert caught.value.code == "conversations_not_kept" and caught.value.param == "previous_response_id"
    for read in (client.responses.retrieve, client.responses.input_items.list, client.responses.delete):
        with pytest.raises(openai.BadRequestError) as caught:
            read(response.id)
        assert caught.value.code == "conversations_not_kept" and "does not keep conversations" in caught.value.message
    assert stored_of(gateway, key) == [] and conversations_of(gateway, key) == []


def test_another_keys_response_is_not_found(gateway):
    owner_key, owner = keeping_client(gateway, "responses-owner")
    mine = owner.responses.create(model="gpt-test", input="mine")
    _other_key, other = keeping_client(gateway, "responses-other")
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="gpt-test", input="yours?", previous_response_id=mine.id)
    assert caught.value.code == "not_found"
    for read in (other.responses.retrieve, other.responses.input_items.list, other.responses.delete):
        with pytest.raises(openai.NotFoundError):
            read(mine.id)
    assert owner.responses.retrieve(mine.id).id == mine.id  # the other key's delete touched nothing
    with pytest.raises(openai.NotFoundError):
        owner.responses.retrieve(mine.id + "0")


def test_delete_answers_the_deleted_object_and_the_response_is_gone(gateway):
    key, client = keeping_client(gateway, "responses-delete")
    first = client.responses.create(model="gpt-test", input="one")
    second = client.responses.create(model="gpt-test", input="two", previous_response_id=first.id)
    raw = client.responses.with_raw_response.delete(first.id)
    assert raw.http_response.status_code == 200
    assert raw.http_response.json() == {"id": first.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    # The response that continued it keeps its context.
    third = client.responses.create(model="gpt-test", input="three", previous_response_id=second.id)
    assert upstream_messages(gateway)[:2] == [{"role": "user", "content": "one"},
                                              {"role": "assistant", "content": first.output_text}]
    assert client.responses.delete(second.id) is None  # the SDK's own return value
    assert [row["public_id"] for row in stored_of(gateway, key)] == [third.id]


def test_every_prefix_serves_stored_responses_and_scopes_apply(gateway):
    key, client = keeping_client(gateway, "responses-prefixes")
    response = client.responses.create(model="gpt-test", input="hi")
    for prefix in ("/v1", "/api/openai-compat/v1", "/api/v1", "", "/v1/v1"):
        fetched = get(gateway, f"{prefix}/responses/{response.id}", key["key"])
        assert fetched.status_code == 200 and fetched.json()["id"] == response.id, prefix
        listed = get(gateway, f"{prefix}/responses/{response.id}/input_items", key["key"])
        assert listed.json()["object"] == "list" and listed.json()["data"][0]["content"][0]["text"] == "hi"
    assert requests.post(f"{gateway.url}/v1/responses/{response.id}", timeout=30,
                         headers={"Authorization": f"Bearer {key['key']}"}).status_code == 405
    read_key = gateway.create_key("responses-read-scope", "--keep-conversations", "--scope", "read")
    assert get(gateway, f"/v1/responses/{response.id}", read_key["key"]).status_code == 404
    denied = requests.delete(f"{gateway.url}/v1/responses/{response.id}", timeout=30,
                             headers={"Authorization": f"Bearer {read_key['key']}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "scope_not_allowed"
    row = gateway.log_row(fetched.headers["x-request-id"])
    assert row["endpoint"] == "responses" and row["status"] == 200


def test_a_revoked_keys_responses_are_gone(gateway):
    key, client = keeping_client(gateway, "responses-revoked")
    response = client.responses.create(model="gpt-test", input="soon gone")
    assert len(stored_of(gateway, key)) == 1
    gateway.server.cli("keys", "revoke", key["id"])
    assert stored_of(gateway, key) == [] and conversations_of(gateway, key) == []
    with pytest.raises(openai.AuthenticationError):
        client.responses.retrieve(response.id)


def test_a_response_past_its_retention_is_gone(gateway):
    key, client = keeping_client(gateway, "responses-retention")
    response = client.responses.create(model="gpt-test", input="old")
    # The conversation's last turn 31 days ago (retention is 30 days by default): the row's clock, not a sleep.
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=31)
    execute(gateway, "UPDATE conversations SET updated_at = :at WHERE key_id = "
            "(SELECT id FROM api_keys WHERE public_id = :key)", at=long_ago, key=key["id"])
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-test", input="remember?", previous_response_id=response.id)
    result = gateway.server.cli("conversations", "purge", "--json")
    assert json.loads(result.stdout)["deleted"] >= 1
    assert stored_of(gateway, key) == [] and conversations_of(gateway, key) == []
