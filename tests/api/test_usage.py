"""Settlement: every request leaves one request-log row (metadata only) and books its cost on the key."""
from __future__ import annotations

from api_helpers import user, wait_for
from conftest import INPUT_PRICE, OUTPUT_PRICE


def test_a_request_books_tokens_credits_and_last_use(gateway):
    created = gateway.create_key("usage-check")
    client = gateway.client(key=created["key"])
    secret_prompt = "the secret prompt text 4711"
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=user(secret_prompt))
    completion = raw.parse()
    row = gateway.log_row(raw.headers["x-request-id"])
    usage = completion.usage
    expected = round(usage.prompt_tokens * INPUT_PRICE + usage.completion_tokens * OUTPUT_PRICE)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["credits_micro"] == expected
    assert row["status"] == 200 and row["endpoint"] == "chat" and row["model"] == "gpt-test"
    assert row["client_ip"] == "127.0.0.1" and row["usage_estimated"] in (False, 0)
    assert row["latency_ms"] > 0
    assert secret_prompt not in repr(row) and completion.choices[0].message.content not in repr(row)

    key = gateway.query("SELECT id, used_micro, last_used_at, last_used_ip FROM api_keys WHERE public_id = :p",
                        p=created["id"])[0]
    assert key["used_micro"] == expected and key["last_used_ip"] == "127.0.0.1" and key["last_used_at"]

    stream = client.chat.completions.with_raw_response.create(model="gpt-test", messages=user("again"),
                                                              stream=True)
    list(stream.parse())
    stream_row = wait_for(lambda: gateway.log_row(stream.headers["x-request-id"]))
    assert stream_row["stream"] in (True, 1) and stream_row["ttfb_ms"] is not None
    assert stream_row["output_tokens"] == 8  # from the upstream's usage chunk, asked for by the gateway
    monthly = gateway.query("SELECT requests, input_tokens, output_tokens, credits_micro FROM usage_monthly "
                            "WHERE key_id = :k AND model = 'gpt-test'", k=key["id"])
    assert monthly[0]["requests"] == 2
    assert monthly[0]["credits_micro"] == expected + stream_row["credits_micro"]
    total = gateway.query("SELECT used_micro FROM api_keys WHERE id = :k", k=key["id"])[0]["used_micro"]
    assert total == monthly[0]["credits_micro"]


def test_refused_requests_are_logged_without_cost(gateway):
    created = gateway.create_key("usage-refused")
    response = gateway.post("/v1/chat/completions", {"model": "no-such-model", "messages": user("hi")},
                            key=created["key"])
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["status"] == 404 and row["error_code"] == "model_not_found" and row["credits_micro"] == 0
    assert row["model"] == "no-such-model"
