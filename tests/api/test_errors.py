"""Errors per DESIGN §6: status, type and code, all four keys, the SDK exception class, x-request-id."""
from __future__ import annotations

import openai
import pytest
import requests
from api_helpers import user
from conftest import MAX_BODY_BYTES


def assert_error(response: requests.Response, status: int, type_: str, code: str | None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["type"] == type_ and error["code"] == code
    assert error["message"]
    return error


CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def test_missing_key(gateway):
    response = requests.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert_error(response, 401, "invalid_request_error", "invalid_api_key")


@pytest.mark.parametrize("key", ["sk-pf-notakeyatall", "nonsense", "sk-pf-" + "A" * 40])
def test_unknown_and_malformed_keys_get_the_same_401(gateway, key):
    response = gateway.post("/v1/chat/completions", CHAT, key=key)
    error = assert_error(response, 401, "invalid_request_error", "invalid_api_key")
    assert key not in error["message"]
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(key=key).chat.completions.create(model="gpt-test", messages=user("hi"))
    assert caught.value.code == "invalid_api_key" and caught.value.request_id.startswith("req_")


def test_revoked_and_disabled_keys_are_refused_on_the_very_next_request(gateway):
    unknown = gateway.post("/v1/chat/completions", CHAT, key="sk-pf-" + "B" * 40).json()
    for action in ("revoke", "disable"):
        created = gateway.create_key(f"short-lived-{action}")
        assert gateway.post("/v1/chat/completions", CHAT, key=created["key"]).status_code == 200
        gateway.server.cli("keys", action, created["id"])
        response = gateway.post("/v1/chat/completions", CHAT, key=created["key"])
        assert_error(response, 401, "invalid_request_error", "invalid_api_key")
        assert response.json() == unknown  # no hint that the key exists


def test_unknown_and_disabled_models(gateway, client):
    for model in ("no-such-model", "disabled-test"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model, messages=user("hi"))
        assert caught.value.code == "model_not_found" and caught.value.type == "invalid_request_error"
        assert f"`{model}`" in caught.value.message


def test_model_not_allowed_for_the_key(gateway):
    limited = gateway.create_key("demo-only", "--models", "demo")
    client = gateway.client(key=limited["key"])
    assert client.chat.completions.create(model="demo", messages=user("hi")).choices
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("hi"))
    assert caught.value.code == "model_not_allowed" and caught.value.type == "permission_error"
    assert [m.id for m in client.models.list()] == ["demo"]


def test_quota_exhausted_is_402_without_retries(gateway):
    broke = gateway.create_key("no-credits", "--quota", "0")
    response = gateway.post("/v1/chat/completions", CHAT, key=broke["key"])
    assert_error(response, 402, "insufficient_quota", "insufficient_quota")
    assert response.headers["x-should-retry"] == "false"
    before = gateway.upstream_stats()["by_path"].get("/v1/chat/completions")
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=broke["key"], max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-test", messages=user("hi"))
    assert caught.value.status_code == 402 and caught.value.code == "insufficient_quota"
    assert gateway.upstream_stats()["by_path"].get("/v1/chat/completions") == before
    # The SDK made exactly one attempt: one request-log row each for the raw request and the SDK's.
    rows = gateway.query("SELECT r.status, r.error_code FROM request_logs r JOIN api_keys k ON k.id = r.key_id "
                         "WHERE k.public_id = :p ORDER BY r.id", p=broke["id"])
    assert [(row["status"], row["error_code"]) for row in rows] == [(402, "insufficient_quota")] * 2


@pytest.mark.parametrize("body, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b"[" * 100_000, None),  # nesting deeper than the JSON parser's recursion limit
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "gpt-test"}, "messages"),
    ({"model": "gpt-test", "messages": []}, "messages"),
    ({"model": "gpt-test", "messages": ["hi"]}, "messages[0]"),
    ({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}, "max_tokens"),
])
def test_bad_requests(gateway, body, param):
    error = assert_error(gateway.post("/v1/chat/completions", body), 400, "invalid_request_error", "invalid_request")
    assert error["param"] == param


def test_bad_request_is_a_bad_request_error_in_the_sdk(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-test", messages=[])


def test_body_too_large(gateway):
    big = {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 10)}]}
    assert_error(gateway.post("/v1/chat/completions", big), 413, "invalid_request_error", "request_too_large")


def test_unknown_route_and_wrong_method(gateway):
    response = gateway.post("/v1/chat/complete", CHAT)
    error = assert_error(response, 404, "invalid_request_error", "unknown_url")
    assert error["message"] == "Invalid URL (POST /v1/chat/complete)"
    response = requests.get(f"{gateway.url}/v1/chat/completions", timeout=5)
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("directive, status, code, exception", [
    ("status=500", 502, "upstream_error", openai.InternalServerError),
    ("status=400", 400, "fake_failure", openai.BadRequestError),
    ("status=401", 502, "upstream_error", openai.InternalServerError),
    ("status=503", 503, "upstream_unavailable", openai.InternalServerError),
    ("status=504", 504, "upstream_timeout", openai.InternalServerError),
    ("malformed", 502, "upstream_error", openai.InternalServerError),
])
def test_upstream_failures_map_to_gateway_errors(gateway, client, directive, status, code, exception):
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="gpt-test", messages=user(f"[fake {directive}] hi"))
    assert caught.value.status_code == status and caught.value.code == code
    assert "sk-upstream-secret" not in caught.value.message


def test_upstream_rate_limit_is_passed_on_with_a_short_retry_after(gateway):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test",
                                                     "messages": user("[fake status=429 retry_after=3600] hi")})
    error = assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert response.headers["retry-after"] == "60" and error["retry_after"] == 60


def test_upstream_timeout_and_unreachable_upstream(gateway, client):
    # short-test's connection waits 1 s between bytes
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="short-test", messages=user("[fake hang] hi"))
    assert caught.value.status_code == 504 and caught.value.code == "upstream_timeout"
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="short-test", messages=user("[fake first_byte_delay=3] hi"),
                                       stream=True)
    assert caught.value.status_code == 504 and caught.value.code == "upstream_timeout"
    with pytest.raises(openai.APIError) as caught:  # silent after the stream began: an error frame
        for _chunk in client.chat.completions.create(model="short-test", messages=user("[fake hang_after=2] hi"),
                                                     stream=True):
            pass
    assert caught.value.code == "upstream_timeout"
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="dead-test", messages=user("hi"))
    assert caught.value.status_code == 503 and caught.value.code == "upstream_unavailable"


def test_failed_requests_are_logged_with_their_code(gateway):
    response = gateway.post("/v1/chat/completions", {"model": "gpt-test", "messages": user("[fake status=500] x")})
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["status"] == 502 and row["error_code"] == "upstream_error" and row["model"] == "gpt-test"
    response = gateway.post("/v1/chat/completions", CHAT, key="sk-pf-" + "C" * 40)
    row = gateway.log_row(response.headers["x-request-id"])
    assert row["status"] == 401 and row["key_id"] is None
