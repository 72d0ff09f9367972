"""Streaming (compat.md §2): framing byte by byte, usage chunk, tool-call deltas, pings, failures after the
first byte, and a client that goes away."""
from __future__ import annotations

import json
import socket
import time

import openai
import pytest
from api_helpers import raw_post, sse_data, user, wait_for
from conftest import PING_SECONDS


def test_stream_framing_byte_by_byte(gateway):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("Hi")}, gateway.key,
                              headers={"Accept": "application/json"})  # as the SDKs send it
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    assert response.getheader("x-request-id").startswith("req_")
    body = response.read()  # returns only at EOF: the body is closed after [DONE]
    conn.close()
    assert body.endswith(b"\n\ndata: [DONE]\n\n")
    assert b"event:" not in body
    blocks = body.split(b"\n\n")
    assert blocks[-1] == b""
    for block in blocks[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block, block
    chunks = [json.loads(data) for data in sse_data(body)[:-1]]
    assert {c["id"] for c in chunks} == {"chatcmpl-fake"} and len({c["created"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {"gpt-test"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum("role" in c["choices"][0]["delta"] for c in chunks) == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c or c["usage"] is None for c in chunks)  # the client did not ask for usage
    sent = gateway.last_upstream_request()["json"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_stream_with_include_usage_through_the_sdk(gateway, client):
    chunks = list(client.chat.completions.create(model="gpt-test", messages=user("Hello there"), stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("This is the fake upstream")
    last = chunks[-1]
    assert last.choices == [] and last.usage.prompt_tokens == 2 and last.usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_sdk_helper_accumulates_the_message(client):
    with client.chat.completions.stream(model="gpt-test", messages=user("hi")) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content.startswith("This is the fake upstream")


def test_stream_usage_is_estimated_when_upstream_sends_none(gateway, client):
    stream = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=user("[fake no_usage] hello"), stream=True, stream_options={"include_usage": True})
    chunks = list(stream.parse())
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    row = wait_for(lambda: gateway.log_row(stream.headers["x-request-id"]))
    assert row["usage_estimated"] in (True, 1) and row["output_tokens"] == 8


def test_tool_call_deltas(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    chunks = list(client.chat.completions.create(model="gpt-test", messages=user("Weather?"), tools=tools,
                                                 stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    calls = [d.tool_calls[0] for d in deltas]
    assert all(call.index == 0 for call in calls)
    assert calls[0].id and calls[0].function.name == "get_weather" and calls[0].function.arguments == ""
    assert all(call.id is None and call.function.name is None for call in calls[1:])
    assert json.loads("".join(call.function.arguments for call in calls)) == {"city": "Berlin"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    with client.chat.completions.stream(model="gpt-test", messages=user("Weather?"), tools=tools) as stream:
        final = stream.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "Berlin"}


def test_demo_stream_sends_one_token_per_chunk(client):
    chunks = list(client.chat.completions.create(model="demo", messages=user("Hello"), stream=True,
                                                 stream_options={"include_usage": True}))
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert chunks[-1].usage.completion_tokens == len(content)


def test_chunks_are_passed_on_as_they_arrive(gateway):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("[fake chunk_delay=0.3] hi")},
                              gateway.key)
    arrivals = []
    while True:
        line = response.fp.readline()  # raw lines: chunk sizes, data lines, blank lines
        if line.startswith(b"data: "):
            arrivals.append(time.monotonic())
        if not line or line.startswith(b"data: [DONE]"):
            break
    conn.close()
    assert len(arrivals) == 11  # role, 8 words, finish, [DONE]
    assert arrivals[-1] - arrivals[0] > 2.0  # not buffered until the end


def test_pings_while_upstream_is_silent(gateway, client):
    delay = PING_SECONDS * 2.5
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True,
                               "messages": user(f"[fake pause={delay} chunks=1] hi")}, gateway.key)
    body = response.read()
    conn.close()
    assert b": ping\n\n" in body
    assert body.endswith(b"data: [DONE]\n\n")
    chunks = list(client.chat.completions.create(model="gpt-test", stream=True,
                                                 messages=user(f"[fake pause={delay} chunks=1] hi")))
    assert chunks[-1].choices[0].finish_reason == "stop"  # the SDK ignores the comments


def test_upstream_failure_after_first_byte_is_one_error_frame(gateway, client):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("[fake die_after=3] hi")},
                              gateway.key)
    assert response.status == 200
    body = response.read()
    conn.close()
    events = sse_data(body)
    assert len(events) == 4 and b"[DONE]" not in body
    error = json.loads(events[-1])["error"]
    assert error == {"message": error["message"], "type": "server_error", "param": None, "code": "upstream_error"}
    row = wait_for(lambda: gateway.log_row(response.getheader("x-request-id")))
    assert row["status"] == 502 and row["error_code"] == "upstream_error" and row["stream"] in (True, 1)

    with pytest.raises(openai.APIError) as caught:
        for _chunk in client.chat.completions.create(model="gpt-test", stream=True,
                                                      messages=user("[fake error_after=2] hi")):
            pass
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.code == "upstream_error"


def test_malformed_chunk_ends_the_stream_with_an_error_frame(gateway):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "messages": user("[fake malformed] hi")},
                              gateway.key)
    body = response.read()
    conn.close()
    assert json.loads(sse_data(body)[-1])["error"]["code"] == "upstream_error"


def test_failure_before_first_byte_is_a_plain_json_error(gateway, client):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("[fake status=500] hi"), stream=True)
    assert caught.value.status_code == 502 and caught.value.code == "upstream_error"


def test_client_disconnect_closes_upstream_and_settles(gateway):
    before = gateway.upstream_stats()["closed_by_client"]
    sock = socket.create_connection(("127.0.0.1", gateway.server.port))
    body = json.dumps({"model": "gpt-test", "stream": True, "messages": user("[fake chunk_delay=0.2 chunks=40] hi")})
    sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    received = b""
    while received.count(b"data: ") < 3:
        received += sock.recv(65536)
    request_id = next(line.split(b": ", 1)[1].strip().decode() for line in received.split(b"\r\n")
                      if line.lower().startswith(b"x-request-id:"))
    closed_at = time.monotonic()
    sock.close()
    wait_for(lambda: gateway.upstream_stats()["closed_by_client"] > before, timeout=5)
    assert time.monotonic() - closed_at < 2.0
    row = wait_for(lambda: gateway.log_row(request_id), timeout=5)
    assert row["status"] == 499 and row["error_code"] == "client_disconnected"


def test_client_disconnect_while_upstream_hangs(gateway):
    before = gateway.upstream_stats()["closed_by_client"]
    sock = socket.create_connection(("127.0.0.1", gateway.server.port))
    body = json.dumps({"model": "gpt-test", "stream": True, "messages": user("[fake hang_after=2] hi")})
    sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gateway.key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    received = b""
    while received.count(b"data: ") < 2:
        received += sock.recv(65536)
    closed_at = time.monotonic()
    sock.close()
    wait_for(lambda: gateway.upstream_stats()["closed_by_client"] > before, timeout=5)
    assert time.monotonic() - closed_at < 1.5  # noticed while the upstream is silent, not at the next ping
