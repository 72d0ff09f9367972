"""Chat threads the server keeps (`thread_id` sent through the SDK's extra_body), against the live gateway:
the earlier turns reach the fake upstream ahead of the new messages, streams name the thread on their first
chunk, and nothing is kept for a key that keeps no conversations, another key, a revoked key or a thread
past its retention."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import openai
import pytest
from api_helpers import execute, raw_post, sse_data, upstream_messages, user

ANSWER = "This is the fake upstream answering your request with a fixed sentence of words"
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def keeping_key(gateway, name: str) -> dict:
    return gateway.create_key(name, "--keep-conversations")


def thread_of(response) -> str | None:
    return (response.model_extra or {}).get("thread_id")


def rows_of(gateway, key: dict) -> list:
    return gateway.query("SELECT c.public_id, c.items_encrypted FROM conversations c JOIN api_keys k "
                         "ON k.id = c.key_id WHERE k.public_id = :key", key=key["id"])


def test_three_turns_send_the_earlier_turns_upstream(gateway):
    key = keeping_key(gateway, "threads-three")
    client = gateway.client(key["key"])
    first = client.chat.completions.create(model="gpt-test", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}])
    thread_id = thread_of(first)
    assert thread_id and thread_id.startswith("thread_") and len(thread_id) >= len("thread_") + 32
    assert upstream_messages(gateway) == [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "one"}]
    assert "thread_id" not in gateway.last_upstream_request()["json"]

    second = client.chat.completions.create(model="gpt-test", messages=user("two"),
                                            extra_body={"thread_id": thread_id})
    assert thread_of(second) == thread_id
    turn_one = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"},
                {"role": "assistant", "content": first.choices[0].message.content}]
    assert ANSWER.startswith(first.choices[0].message.content)
    assert upstream_messages(gateway) == [*turn_one, {"role": "user", "content": "two"}]
    sent = gateway.last_upstream_request()["json"]
    assert "thread_id" not in sent

    third = client.chat.completions.create(model="gpt-test", messages=user("three"),
                                           extra_body={"thread_id": thread_id})
    assert thread_of(third) == thread_id
    assert upstream_messages(gateway) == [
        *turn_one, {"role": "user", "content": "two"},
        {"role": "assistant", "content": second.choices[0].message.content},
        {"role": "user", "content": "three"}]

    rows = rows_of(gateway, key)
    assert [row["public_id"] for row in rows] == [thread_id]
    assert "three" not in rows[0]["items_encrypted"] and "Be brief" not in rows[0]["items_encrypted"]


def test_a_new_thread_on_every_first_turn(gateway):
    client = gateway.client(keeping_key(gateway, "threads-new")["key"])
    ids = {thread_of(client.chat.completions.create(model="gpt-test", messages=user("hi"))) for _ in range(2)}
    assert len(ids) == 2 and None not in ids


def test_stream_names_the_thread_on_its_first_chunk_and_stores_the_streamed_answer(gateway):
    key = keeping_key(gateway, "threads-stream")
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("streamed one")}, key["key"])
    assert response.status == 200
    payloads = sse_data(response.read())
    conn.close()
    assert payloads[-1] == b"[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    thread_id = chunks[0]["thread_id"]
    assert thread_id.startswith("thread_")
    assert payloads[0].startswith(b'{"thread_id":')
    assert all("thread_id" not in chunk for chunk in chunks[1:])
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))

    client = gateway.client(key["key"])
    stream = client.chat.completions.create(model="gpt-test", messages=user("streamed two"), stream=True,
                                            extra_body={"thread_id": thread_id})
    received = list(stream)
    assert thread_of(received[0]) == thread_id
    assert upstream_messages(gateway) == [{"role": "user", "content": "streamed one"},
                                          {"role": "assistant", "content": streamed},
                                          {"role": "user", "content": "streamed two"}]


def test_streamed_tool_calls_are_stored_and_sent_back(gateway):
    client = gateway.client(keeping_key(gateway, "threads-tools")["key"])
    stream = client.chat.completions.create(model="gpt-test", messages=user("weather in Bonn?"),
                                            tools=[WEATHER_TOOL], stream=True)
    chunks = list(stream)
    thread_id = thread_of(chunks[0])
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert calls[0].id == "call_fake1" and json.loads(arguments)

    answer = client.chat.completions.create(
        model="gpt-test", tools=[WEATHER_TOOL], extra_body={"thread_id": thread_id},
        messages=[{"role": "tool", "tool_call_id": "call_fake1", "content": "sunny"}])
    assert answer.choices[0].message.content
    assert upstream_messages(gateway) == [
        {"role": "user", "content": "weather in Bonn?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_fake1", "type": "function",
             "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_fake1", "content": "sunny"}]


def test_a_key_without_conversations_gets_400_and_stores_nothing(gateway):
    key = gateway.create_key("threads-off", "--no-keep-conversations")
    client = gateway.client(key["key"])
    plain = client.chat.completions.create(model="gpt-test", messages=user("hi"))
    assert thread_of(plain) is None
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("hi"),
                                       extra_body={"thread_id": "thread_" + "0" * 48})
    error = caught.value.body
    assert error["code"] == "conversations_not_kept" and error["param"] == "thread_id"
    assert "does not keep conversations" in error["message"]
    streamed = list(client.chat.completions.create(model="gpt-test", messages=user("hi"), stream=True))
    assert all(thread_of(chunk) is None for chunk in streamed)
    assert rows_of(gateway, key) == []


def test_another_keys_thread_is_not_found(gateway):
    owner = gateway.client(keeping_key(gateway, "threads-owner")["key"])
    thread_id = thread_of(owner.chat.completions.create(model="gpt-test", messages=user("mine")))
    other = gateway.client(keeping_key(gateway, "threads-other")["key"])
    with pytest.raises(openai.NotFoundError) as caught:
        other.chat.completions.create(model="gpt-test", messages=user("yours?"),
                                      extra_body={"thread_id": thread_id})
    assert caught.value.body["code"] == "not_found" and caught.value.body["param"] == "thread_id"
    with pytest.raises(openai.NotFoundError):
        owner.chat.completions.create(model="gpt-test", messages=user("typo"),
                                      extra_body={"thread_id": thread_id + "0"})


def test_a_revoked_keys_threads_are_gone(gateway):
    key = keeping_key(gateway, "threads-revoked")
    client = gateway.client(key["key"])
    client.chat.completions.create(model="gpt-test", messages=user("soon gone"))
    assert len(rows_of(gateway, key)) == 1
    gateway.server.cli("keys", "revoke", key["id"])
    assert rows_of(gateway, key) == []
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-test", messages=user("still there?"))


def test_a_thread_past_its_retention_is_gone(gateway):
    key = keeping_key(gateway, "threads-retention")
    client = gateway.client(key["key"])
    thread_id = thread_of(client.chat.completions.create(model="gpt-test", messages=user("old")))
    # The last turn 31 days ago (retention is 30 days by default): the row's clock, not a sleep.
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=31)
    execute(gateway, "UPDATE conversations SET updated_at = :at WHERE public_id = :id", at=long_ago, id=thread_id)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-test", messages=user("remember?"),
                                       extra_body={"thread_id": thread_id})
    result = gateway.server.cli("conversations", "purge", "--json")
    assert json.loads(result.stdout)["deleted"] >= 1
    assert rows_of(gateway, key) == []


def test_a_bad_thread_id_is_400(gateway):
    client = gateway.client(keeping_key(gateway, "threads-bad")["key"])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("hi"), extra_body={"thread_id": 5})
    assert caught.value.body["param"] == "thread_id"


def test_messages_endpoint_refuses_a_thread_id(gateway):
    key = keeping_key(gateway, "threads-messages")
    response = gateway.post("/v1/messages", {"model": "gpt-test", "max_tokens": 20, "thread_id": "thread_x",
                                             "messages": [{"role": "user", "content": "hi"}]}, key=key["key"])
    assert response.status_code == 400
    assert "chat completions only" in response.json()["error"]["message"]
    assert rows_of(gateway, key) == []
