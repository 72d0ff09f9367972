"""`x-should-retry: false` where retrying cannot help (DESIGN §6, issue 3 item 7): the upstream refused the
gateway's credential (401/403) or does not know the model name (404). The status stays 502 upstream_error;
an SDK with retries enabled sends the request exactly once."""
from __future__ import annotations

import uuid

import anthropic
import openai
import pytest
from anthropic_catalog import CLAUDE, anthropic_catalog  # noqa: F401  (a fixture)
from api_helpers import user


def upstream_hits(gateway, marker: str, path: str) -> int:
    return sum(marker in str(r["json"]) for r in gateway.upstream_stats()["recent"] if r["path"] == path)


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_refusals_are_not_retried_by_the_sdk(gateway, status, stream):
    marker = uuid.uuid4().hex
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test", "stream": stream,
                                                     "messages": user(f"[fake status={status}] {marker}")})
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error"
    assert response.json()["error"]["type"] == "server_error"
    assert response.headers["x-should-retry"] == "false"
    assert "sk-upstream-secret" not in response.text

    marker = uuid.uuid4().hex
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=2)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user(f"[fake status={status}] {marker}"),
                                       stream=stream)
    assert caught.value.status_code == 502 and caught.value.code == "upstream_error"
    assert upstream_hits(gateway, marker, "/v1/chat/completions") == 1
    row = gateway.log_row(caught.value.request_id)
    assert row["status"] == 502 and row["error_code"] == "upstream_error"


def test_other_upstream_failures_stay_retryable(gateway):
    marker = uuid.uuid4().hex
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test",
                                                     "messages": user(f"[fake status=500] {marker}")})
    assert response.status_code == 502 and "x-should-retry" not in response.headers
    marker = uuid.uuid4().hex
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-test", messages=user(f"[fake status=500] {marker}"))
    assert upstream_hits(gateway, marker, "/v1/chat/completions") == 2  # the SDK's retry went through


@pytest.mark.usefixtures("anthropic_catalog")
@pytest.mark.parametrize("status", [401, 404])
def test_anthropic_upstream_refusals_are_not_retried(gateway, status):
    marker = uuid.uuid4().hex
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=2)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=10,
                               messages=[{"role": "user", "content": f"[fake status={status}] {marker}"}])
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["type"] == "error"
    assert upstream_hits(gateway, marker, "/v1/messages") == 1
