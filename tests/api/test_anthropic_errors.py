"""Errors on /v1/messages in Anthropic's shape (compat.md §6, statuses per DESIGN §6), the anthropic SDK
exception each one produces, and failures in the middle of a stream as an `error` event."""

from __future__ import annotations

import anthropic
import pytest
import requests
from anthropic_catalog import (  # noqa: F401  (anthropic_catalog is a fixture)
    CLAUDE,
    CLAUDE_NO_KEY,
    anthropic_catalog,
    anthropic_client,
    sse_events,
    upstream_messages_requests,
)
from api_helpers import wait_for
from conftest import MAX_BODY_BYTES

pytestmark = pytest.mark.usefixtures("anthropic_catalog")


def hello(text="Hallo Welt"):
    return [{"role": "user", "content": text}]


def post_messages(gateway, body, key=None, headers=None) -> requests.Response:
    headers = {
        "x-api-key": gateway.key if key is None else key,
        "anthropic-version": "2023-06-01",
        **(headers or {}),
    }
    return requests.post(
        f"{gateway.url}/v1/messages",
        data=body if isinstance(body, str) else None,
        json=None if isinstance(body, str) else body,
        headers=headers,
        timeout=30,
    )


def assert_anthropic_error(response: requests.Response, status: int, error_type: str) -> str:
    """The documented shape: {"type":"error","error":{"type","message"},"request_id"}; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == error_type and body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"] == response.headers["x-request-id"]
    return body["error"]["message"]


@pytest.mark.parametrize("key", ["", "sk-pf-notakeyatall", "sk-pf-" + "A" * 40])
def test_missing_and_unknown_keys(gateway, key):
    response = post_messages(gateway, {"model": "demo", "max_tokens": 5, "messages": hello()}, key=key)
    assert_anthropic_error(response, 401, "authentication_error")


def test_authentication_error_in_the_sdk(gateway):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic_client(gateway, key="sk-pf-wrong").messages.create(
            model="demo", max_tokens=5, messages=hello()
        )
    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id.startswith("req_")


def test_unknown_model(gateway):
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client(gateway).messages.create(model="claude-nowhere", max_tokens=5, messages=hello())
    assert caught.value.type == "not_found_error"
    assert "claude-nowhere" in caught.value.api_message


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"model": "demo", "messages": hello()}, "max_tokens"),
        ({"model": "demo", "max_tokens": 0, "messages": hello()}, "max_tokens"),
        ({"max_tokens": 5, "messages": hello()}, "model"),
        ({"model": "demo", "max_tokens": 5}, "messages"),
        ({"model": "demo", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"model": "demo", "max_tokens": 5, "stream": "yes", "messages": hello()}, "stream"),
        ('{"model": "demo", "max_tokens": 5, "messages": [', "JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_requests_are_400_invalid_request_error(gateway, body, mentions):
    message = assert_anthropic_error(post_messages(gateway, body), 400, "invalid_request_error")
    assert mentions in message


def test_features_another_model_cannot_take_are_a_400_not_a_500(gateway):
    body = {
        "model": "demo",
        "max_tokens": 5,
        "messages": hello(),
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client(gateway).messages.create(**body)
    assert caught.value.type == "invalid_request_error"
    assert "web_search_20250305" in caught.value.api_message


@pytest.mark.parametrize("model", [CLAUDE, "gpt-test"])
def test_body_too_large_is_413_request_too_large(gateway, model):
    before = len(upstream_messages_requests(gateway))
    big = {"model": model, "max_tokens": 5, "messages": hello("x" * (MAX_BODY_BYTES + 10))}
    response = post_messages(gateway, big)
    message = assert_anthropic_error(response, 413, "request_too_large")
    assert str(MAX_BODY_BYTES) in message
    row = gateway.log_row(response.headers["request-id"])
    assert row["status"] == 413 and row["error_code"] == "request_too_large" and row["endpoint"] == "messages"
    with pytest.raises(anthropic.APIStatusError) as caught:
        anthropic_client(gateway).messages.create(**big)
    assert caught.value.status_code == 413 and caught.value.type == "request_too_large"
    assert len(upstream_messages_requests(gateway)) == before


def test_quota_exhausted_is_402_billing_error_without_retries(gateway):
    broke = gateway.create_key("anthropic-broke", "--quota", "0")
    response = post_messages(
        gateway, {"model": CLAUDE, "max_tokens": 5, "messages": hello()}, key=broke["key"]
    )
    assert_anthropic_error(response, 402, "billing_error")
    assert response.headers["x-should-retry"] == "false"
    before = len(upstream_messages_requests(gateway))
    with pytest.raises(anthropic.PaymentRequiredError):
        anthropic_client(gateway, key=broke["key"], max_retries=2).messages.create(
            model=CLAUDE, max_tokens=5, messages=hello()
        )
    assert len(upstream_messages_requests(gateway)) == before  # refused before any upstream request


def test_model_not_allowed_for_the_key(gateway):
    limited = gateway.create_key("anthropic-demo-only", "--models", "demo")
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        anthropic_client(gateway, key=limited["key"]).messages.create(
            model=CLAUDE, max_tokens=5, messages=hello()
        )
    assert caught.value.type == "permission_error"


def test_upstream_overloaded_is_a_retried_503_overloaded_error(gateway):
    before = len(upstream_messages_requests(gateway))
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_client(gateway, max_retries=1).messages.create(
            model=CLAUDE, max_tokens=5, messages=hello("[fake status=529]")
        )
    assert isinstance(caught.value, anthropic.ServiceUnavailableError)
    assert caught.value.status_code == 503 and caught.value.type == "overloaded_error"
    assert len(upstream_messages_requests(gateway)) == before + 2  # the SDK retried once


@pytest.mark.parametrize("model", ["gpt-test", CLAUDE])
def test_upstream_server_error_is_502_api_error(gateway, model):
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_client(gateway).messages.create(
            model=model, max_tokens=5, messages=hello("[fake status=500]")
        )
    assert caught.value.status_code == 502 and caught.value.type == "api_error"


def test_upstream_refusing_the_gateways_credential_is_502(gateway):
    with pytest.raises(anthropic.InternalServerError) as caught:
        anthropic_client(gateway).messages.create(model=CLAUDE_NO_KEY, max_tokens=5, messages=hello())
    assert caught.value.status_code == 502
    assert "credential" in caught.value.api_message
    assert (
        upstream_messages_requests(gateway)[-1]["path"] == "/v1/messages"
    )  # the /v1 base URL was joined right


def test_upstream_rate_limit_is_429_rate_limit_error(gateway):
    response = post_messages(
        gateway, {"model": CLAUDE, "max_tokens": 5, "messages": hello("[fake status=429 retry_after=2]")}
    )
    assert_anthropic_error(response, 429, "rate_limit_error")
    assert response.headers["retry-after"] == "2"


# --- failures after the first byte -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "directive", "error_type"),
    [
        (CLAUDE, "error_after=4", "overloaded_error"),  # the upstream's own error event
        (CLAUDE, "die_after=4", "api_error"),  # the upstream connection broke
        ("gpt-test", "error_after=3", "api_error"),  # an OpenAI-style upstream's error frame
        ("gpt-test", "die_after=3", "api_error"),
    ],
)
def test_failure_mid_stream_is_an_error_event_the_sdk_raises(gateway, model, directive, error_type):
    client = anthropic_client(gateway)
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(
            model=model, max_tokens=50, messages=hello(f"[fake {directive}] Hallo")
        ) as s:
            for text in s.text_stream:
                received.append(text)
    assert caught.value.status_code == 200  # the stream had started
    assert caught.value.type == error_type
    assert received  # text before the failure reached the client
    request_id = caught.value.request_id
    row = wait_for(lambda: gateway.log_row(request_id))
    assert row["status"] >= 500 and row["endpoint"] == "messages"


def test_mid_stream_error_event_on_the_wire(gateway):
    body = {
        "model": CLAUDE,
        "max_tokens": 50,
        "stream": True,
        "messages": hello("[fake error_after=4] Hallo"),
    }
    response = post_messages(gateway, body)
    assert response.status_code == 200
    events = sse_events(response.content)
    name, data = events[-1]
    assert name == "error"
    assert data["type"] == "error" and data["error"]["type"] == "overloaded_error"
    assert data["request_id"] == response.headers["request-id"]
    assert "message_stop" not in [name for name, _ in events]


def test_upstream_failing_before_the_first_event_is_a_plain_status(gateway):
    body = {"model": CLAUDE, "max_tokens": 50, "stream": True, "messages": hello("[fake status=529]")}
    assert_anthropic_error(post_messages(gateway, body), 503, "overloaded_error")
    body["model"] = "gpt-test"
    body["messages"] = hello("[fake status=503]")
    assert_anthropic_error(post_messages(gateway, body), 503, "overloaded_error")


def test_malformed_upstream_answers_are_502_api_error(gateway):
    client = anthropic_client(gateway)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=hello("[fake malformed=1]"))
    assert caught.value.status_code == 502 and caught.value.type == "api_error"
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(
            model=CLAUDE, max_tokens=5, messages=hello("[fake malformed=1]")
        ) as stream:
            stream.get_final_message()
    assert caught.value.status_code == 200 and caught.value.type == "api_error"
    assert "malformed" in caught.value.api_message
