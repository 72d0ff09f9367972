"""Usage always goes out complete (compat.md §1, §7.7): total_tokens and both details objects, also when the
upstream reports only prompt_tokens and completion_tokens, streamed and not."""
from __future__ import annotations

import json

from api_helpers import raw_post, sse_data, user

FULL_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
             "completion_tokens_details"}


def assert_complete(usage: dict, prompt: int, completion: int) -> None:
    assert FULL_KEYS <= set(usage), usage
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    assert usage["total_tokens"] == prompt + completion
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert {"audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"} \
        <= set(usage["completion_tokens_details"])


def test_bare_upstream_usage_is_completed_without_streaming(gateway, client):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test",
                                                     "messages": user("[fake bare_usage] three words here")})
    assert response.status_code == 200
    upstream = gateway.upstream_stats()["recent"][-1]
    assert "bare_usage" in upstream["json"]["messages"][-1]["content"]
    assert_complete(response.json()["usage"], 5, 8)
    completion = client.chat.completions.create(model="gpt-test", messages=user("[fake bare_usage] hi"))
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    row = gateway.log_row(response.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"]) == (5, 8) and row["usage_estimated"] in (False, 0)


def test_bare_upstream_usage_is_completed_in_the_stream(gateway, client):
    conn, response = raw_post(gateway.url, "/v1/chat/completions",
                              {"model": "gpt-test", "stream": True, "stream_options": {"include_usage": True},
                               "messages": user("[fake bare_usage] three words here")}, gateway.key)
    assert response.status == 200
    body = response.read()
    conn.close()
    chunks = [json.loads(data) for data in sse_data(body)[:-1]]
    with_usage = [c for c in chunks if c.get("usage")]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1]["choices"] == []
    assert chunks[-1]["model"] == "gpt-test"
    assert_complete(chunks[-1]["usage"], 5, 8)
    row = gateway.log_row(response.getheader("x-request-id"))
    assert (row["input_tokens"], row["output_tokens"]) == (5, 8) and row["usage_estimated"] in (False, 0)

    last = list(client.chat.completions.create(model="gpt-test", messages=user("[fake bare_usage] hi"),
                                               stream=True, stream_options={"include_usage": True}))[-1]
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.prompt_tokens_details.cached_tokens == 0
    assert last.usage.completion_tokens_details.reasoning_tokens == 0


def test_bare_usage_in_a_legacy_completions_stream(gateway):
    conn, response = raw_post(gateway.url, "/v1/completions",
                              {"model": "gpt-test", "stream": True, "stream_options": {"include_usage": True},
                               "prompt": "[fake bare_usage] say"}, gateway.key)
    body = response.read()
    conn.close()
    last = json.loads(sse_data(body)[-2])
    assert last["choices"] == []
    assert FULL_KEYS <= set(last["usage"])
