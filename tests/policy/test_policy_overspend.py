"""No key spends past its quota through the output it asks for (issue 14, item 1), and a settlement that
meets an unexpected failure still does all its bookkeeping (item 8). Real `pforte serve`, the fake upstream
(OpenAI-style, Azure and Anthropic sides) in `talk` mode: it answers like a real model that talks until the
cap it was sent, with every `n` choice, and records what it received.

Prices of every "talker" model: 0.01 credits per input token, 0.2 credits per output token; keys have a
quota of 100 credits, so 500 output tokens are all a key can pay for."""
from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid

import pytest
import requests
from support.waiting import wait_until

pytestmark = pytest.mark.slow

INPUT, OUTPUT = 10_000.0, 200_000.0  # credits per million tokens: micro-credits per token
QUOTA = 100  # credits
QUOTA_MICRO = QUOTA * 1_000_000
TALK = "[fake talk=5000]"  # the fake model would talk 5000 words: only the cap it gets stops it


_addresses = itertools.count(1)


def unique_ip() -> str:
    """A client address of its own per request (X-Forwarded-For through the trusted proxy; documentation
    range, never a target), so that the per-IP limit never counts requests of different tests together."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def gateway(gateway_factory):
    """The policy tests' live gateway (its database PFORTE_TEST_DATABASE_URL's, its limits in the Redis of
    PFORTE_TEST_RATELIMIT_STORAGE_URI when set), with talker models on every upstream kind."""
    storage = os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI") or "memory://"
    gateway = gateway_factory({"PFORTE_TRUSTED_PROXIES": "127.0.0.1/32,::1/128", "PFORTE_TESTING_FAULTS": "1"},
                              storage=storage)
    cli = gateway.cli
    upstream = gateway.upstream.url
    cli("connections", "add", "--name", "fake-anthropic", "--kind", "anthropic", "--base-url", upstream,
        "--api-key-env", "FAKE_UPSTREAM_KEY")
    cli("connections", "add", "--name", "fake-azure", "--kind", "azure", "--base-url", upstream,
        "--api-key-env", "FAKE_UPSTREAM_KEY", "--api-version", "2024-10-21")
    prices = ("--input-price", str(INPUT), "--output-price", str(OUTPUT))
    for public, connection, upstream_model in (("talker", "fake", "gpt-fake"),
                                               ("claude-talker", "fake-anthropic", "claude-fake"),
                                               ("azure-talker", "fake-azure", "dep-fake"),
                                               ("demo-priced", "demo", "demo"),
                                               ("silent", "fake", "gpt-fake+no_usage=1")):
        cli("models", "add", "--id", public, "--connection", connection, "--upstream-model", upstream_model,
            *prices)
    cli("models", "add", "--id", "cheap", "--connection", "fake", "--upstream-model", "gpt-fake",
        "--input-price", "0.001", "--output-price", "0.001")
    return gateway


def new_key(gateway, *options: str) -> tuple[str, int]:
    created = gateway.create_key("--quota", str(QUOTA), *options)
    return created["key"], created["row_id"]


def post(gateway, path: str, key: str, body: dict, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": unique_ip(), "anthropic-version": "2023-06-01",
               **kwargs.pop("headers", {})}
    return requests.post(f"{gateway.url}{path}", json=body, headers=headers, timeout=60, **kwargs)


def received(gateway, marker: str) -> dict:
    """The JSON body the fake upstream received for the request whose text carries `marker`."""
    recent = requests.get(f"{gateway.upstream.url}/stats", timeout=5).json()["recent"]
    found = [r["json"] for r in recent if r["json"] and marker in json.dumps(r["json"])]
    assert len(found) == 1, marker
    return found[0]


def asked_output(sent: dict) -> int:
    """The most output tokens the upstream may produce for `sent`: every choice up to the largest cap field it
    got (a real server may read either field). A body without any cap is unbounded."""
    caps = [sent[name] for name in ("max_tokens", "max_completion_tokens") if sent.get(name) is not None]
    assert caps, f"no output cap went upstream: {sent}"
    prompt = sent.get("prompt")
    prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
    return (sent.get("n") or 1) * prompts * max(caps)


def assert_books_balance(gateway, row_id: int) -> dict:
    row = gateway.key_row(row_id)
    assert row["used_micro"] == gateway.log_total(row_id)
    assert row["reserved_micro"] == 0
    return row


def chat_body(marker: str, model: str = "talker", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": f"{marker} {TALK}"}], **extra}


# Every endpoint, provider and parameter that decides how much output a request may ask for.
CASES = {
    "chat n=20 max_tokens=50": ("/v1/chat/completions", "talker", {"n": 20, "max_tokens": 50}),
    "chat n=20 stream": ("/v1/chat/completions", "talker", {"n": 20, "max_tokens": 50, "stream": True}),
    "chat max_tokens=0": ("/v1/chat/completions", "talker", {"max_tokens": 0}),
    "chat no cap": ("/v1/chat/completions", "talker", {}),
    "chat small max_completion_tokens, big max_tokens": (  # the smaller cap is the client's limit
        "/v1/chat/completions", "talker", {"max_completion_tokens": 5, "max_tokens": 5000}, 5),
    "chat max_completion_tokens only": ("/v1/chat/completions", "talker", {"max_completion_tokens": 5000}),
    "completions 5 prompts n=4": ("/v1/completions", "talker", {"n": 4, "max_tokens": 50}),
    "azure n=20": ("/v1/chat/completions", "azure-talker", {"n": 20, "max_tokens": 50}),
    "azure no cap": ("/v1/chat/completions", "azure-talker", {}),
    "anthropic upstream, chat max_tokens=0": ("/v1/chat/completions", "claude-talker", {"max_tokens": 0}),
    "anthropic upstream, chat no cap": ("/v1/chat/completions", "claude-talker", {"stream": True}),
    "responses max_output_tokens=5000": ("/v1/responses", "talker", {"max_output_tokens": 5000}),
    "responses no cap, stream": ("/v1/responses", "talker", {"stream": True}),
    "responses anthropic upstream": ("/v1/responses", "claude-talker", {}),
    "messages translated, max_completion_tokens=1": (
        "/v1/messages", "talker", {"max_tokens": 5000, "max_completion_tokens": 1}),
    "messages native": ("/v1/messages", "claude-talker", {"max_tokens": 5000}),
    "messages native stream": ("/v1/messages", "claude-talker", {"max_tokens": 5000, "stream": True}),
}


def request_body(path: str, model: str, marker: str, extra: dict) -> dict:
    if path == "/v1/completions":
        return {"model": model, "prompt": [f"{marker} {TALK}"] + [f"{TALK} more"] * 4, **extra}
    if path == "/v1/responses":
        return {"model": model, "input": f"{marker} {TALK}", **extra}
    return chat_body(marker, model, **extra)


def read(response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        for failure in (b"event: error", b"response.failed", b'"error":{'):
            assert failure not in response.content, response.content[-400:]


@pytest.mark.parametrize("case", list(CASES))
def test_the_upstream_is_never_asked_for_more_than_the_quota_can_pay(gateway, case):
    """Whatever the client asks for, the request that leaves Pforte carries an output cap, and all its choices
    at that cap cost no more than the key has left: the key's quota holds, and the books balance."""
    path, model, extra, *expected = CASES[case]
    key, row_id = new_key(gateway)
    marker = f"ov-{uuid.uuid4().hex}"
    response = post(gateway, path, key, request_body(path, model, marker, extra))
    read(response)
    sent = received(gateway, marker)
    assert asked_output(sent) * OUTPUT < QUOTA_MICRO, sent  # and the prompt estimate fits in the rest
    if expected:
        assert asked_output(sent) == expected[0]
    else:
        assert asked_output(sent) >= 400  # shrunk to what the quota pays for, not refused or cut to nothing
    row = assert_books_balance(gateway, row_id)
    assert 0 < row["used_micro"] <= QUOTA_MICRO


def test_a_large_quota_passes_the_clients_cap_and_reserves_every_choice(gateway):
    """With credits enough, the client's own cap goes upstream unchanged, and the reservation while the stream
    runs covers all n choices at that cap."""
    key, row_id = new_key(gateway)
    marker = f"big-{uuid.uuid4().hex}"
    body = {"model": "talker", "n": 4, "max_tokens": 30, "stream": True,
            "messages": [{"role": "user", "content": f"{marker} [fake talk=10 chunk_delay=0.1]"}]}
    with post(gateway, "/v1/chat/completions", key, body, stream=True) as response:
        assert response.status_code == 200
        reserved = gateway.key_row(row_id)["reserved_micro"]
        for _line in response.iter_lines():
            pass
    assert 4 * 30 * OUTPUT <= reserved <= 4 * 30 * OUTPUT + 200 * INPUT
    sent = received(gateway, marker)
    assert (sent["n"], sent["max_tokens"]) == (4, 30)
    row = assert_books_balance(gateway, row_id)
    assert row["used_micro"] == 40 * OUTPUT + 4 * INPUT  # 4 × 10 words of output, a prompt of 4 words


def test_a_remainder_too_small_for_one_minimal_request_is_402(gateway):
    """0.7 credits pay for the prompt (about 0.35) but not for it and one token of output (0.2) in each of 20
    choices: 402, and nothing goes upstream; nor does a request whose prompt alone costs more than what is
    left. One choice fits, its cap shrunk to one token."""
    created = gateway.create_key("--quota", "0.7")
    key, row_id = created["key"], created["row_id"]
    before = gateway.upstream_requests()
    for body in (chat_body("tiny", n=20, max_tokens=50), chat_body("tiny " + "word " * 400)):
        response = post(gateway, "/v1/chat/completions", key, body)
        assert response.status_code == 402, response.text
        error = response.json()["error"]
        assert error["code"] == "insufficient_quota"
        assert error["message"].startswith("The credits left on this API key do not pay for this request")
    assert gateway.upstream_requests() == before
    fits = post(gateway, "/v1/chat/completions", key, chat_body(f"fits-{uuid.uuid4().hex}", max_tokens=50))
    assert fits.status_code == 200, fits.text
    assert fits.json()["choices"][0]["finish_reason"] == "length"
    row = assert_books_balance(gateway, row_id)
    assert row["used_micro"] <= 700_000


def test_the_demo_upstream_keeps_to_the_cap(gateway):
    """The built-in demo connection honours the cap that Pforte sets, also for `max_tokens: 0`."""
    created = gateway.create_key("--quota", "1")
    key, row_id = created["key"], created["row_id"]
    body = {"model": "demo-priced", "max_tokens": 0,
            "messages": [{"role": "user", "content": "Tell me a long story about the sea"}]}
    response = post(gateway, "/v1/chat/completions", key, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    row = assert_books_balance(gateway, row_id)
    assert row["used_micro"] <= 1_000_000


def test_the_quota_holds_under_concurrent_mixed_requests(gateway):
    """40 clients at once with every kind of request above against one key: the key never spends past its
    quota (each reservation covers what its request may cost), refused requests are 402, the books balance."""
    key, row_id = new_key(gateway)
    rng = random.Random(14)
    plans = [CASES[rng.choice(list(CASES))] for _ in range(40)]
    results: list[int] = []
    lock = threading.Lock()

    def client(plan):
        path, model, extra, *_expected = plan
        response = post(gateway, path, key, request_body(path, model, f"mix-{uuid.uuid4().hex}", extra))
        with lock:
            results.append(response.status_code)

    threads = [threading.Thread(target=client, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {200, 402} and results.count(402) > 0
    row = assert_books_balance(gateway, row_id)
    assert QUOTA_MICRO // 2 < row["used_micro"] <= QUOTA_MICRO


def test_a_small_request_costs_at_least_one_micro_credit(gateway):
    """A few tokens at 0.001 credits per million are a small fraction of a micro-credit: rounded up, never
    free."""
    key, row_id = new_key(gateway)
    response = post(gateway, "/v1/chat/completions", key, {"model": "cheap", "messages": [
        {"role": "user", "content": "Hello there"}]})
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert 0 < (usage["prompt_tokens"] + usage["completion_tokens"]) * 0.001 < 1
    rows = gateway.query("SELECT credits_micro FROM request_logs WHERE request_id = :r",
                         r=response.headers["x-request-id"])
    assert rows[0]["credits_micro"] == 1
    assert assert_books_balance(gateway, row_id)["used_micro"] == 1


# --- item 8: settlement whatever failed before it -------------------------------------------------

def deep(depth: int):
    value = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("stream", [False, True])
def test_a_deeply_nested_body_is_settled_and_frees_its_slot(gateway, stream):
    """Content nested 500 lists deep, to an upstream that reports no usage (so Pforte estimates it): the
    request is answered, its request-log row is written, nothing stays reserved, and the key (concurrency 1)
    can make its next request at once."""
    key, row_id = new_key(gateway, "--max-concurrent", "1")
    body = {"model": "silent", "stream": stream, "max_tokens": 20,
            "messages": [{"role": "user", "content": deep(500)}]}
    response = post(gateway, "/v1/chat/completions", key, body)
    assert response.status_code == 200, response.text[:300]
    if stream:
        assert b"[DONE]" in response.content
    request_id = response.headers["x-request-id"]
    wait_until(lambda: gateway.query("SELECT id FROM request_logs WHERE request_id = :r", r=request_id),
               timeout=5, what="the request-log row of the deep request")
    rows = gateway.query("SELECT status, credits_micro, key_id FROM request_logs WHERE request_id = :r",
                         r=request_id)
    assert rows[0]["status"] == 200 and rows[0]["key_id"] == row_id and rows[0]["credits_micro"] > 0
    assert_books_balance(gateway, row_id)
    started = time.monotonic()
    following = post(gateway, "/v1/chat/completions", key, chat_body("next", max_tokens=5))
    assert following.status_code == 200, following.text
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_inside_the_settlement_still_writes_the_row_and_frees_everything(gateway, stream):
    """Whatever breaks while the settlement works out the cost (here a fault injected there), the request
    still gets its row, its reservation is released and its concurrency slot freed."""
    key, row_id = new_key(gateway, "--max-concurrent", "1")
    response = post(gateway, "/v1/chat/completions", key, chat_body("fault", max_tokens=5, stream=stream),
                    headers={"x-pforte-test-fault": "settle"})
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    rows = wait_until(lambda: gateway.query("SELECT key_id, status FROM request_logs WHERE request_id = :r",
                                            r=request_id), timeout=5, what="the row of the faulty settlement")
    assert (rows[0]["key_id"], rows[0]["status"]) == (row_id, 200)
    assert_books_balance(gateway, row_id)
    following = post(gateway, "/v1/chat/completions", key, chat_body("after the fault", max_tokens=5))
    assert following.status_code == 200, following.text
