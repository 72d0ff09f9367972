"""Scope, model allow list, IP allow list, expiry and credit quota on a live `pforte serve`, with keys made by
the real CLI and requests from the official OpenAI SDK and raw HTTP."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import openai
import pytest

pytestmark = pytest.mark.slow
PRICED_OUTPUT = 1000  # credits per million output tokens of the model "priced" (tests/policy/conftest.py)


def sdk(gateway, key: str, ip: str | None = None) -> openai.OpenAI:
    headers = {"X-Forwarded-For": ip} if ip else None
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, default_headers=headers)


def error_of(response) -> dict:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    return body["error"]


# --- scopes ----------------------------------------------------------------------------------------------

def test_read_scope_lists_models_but_may_not_chat(rules_gateway, client_ip):
    key = rules_gateway.create_key("--scope", "read")["key"]
    assert rules_gateway.models(key, ip=client_ip).status_code == 200
    before = rules_gateway.upstream_requests()
    response = rules_gateway.chat(key, "priced", ip=client_ip)
    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["code"]) == ("permission_error", "scope_not_allowed")
    assert response.headers["x-request-id"]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(rules_gateway, key, client_ip).embeddings.create(model="priced", input="x")
    assert refused.value.code == "scope_not_allowed"
    assert rules_gateway.upstream_requests() == before  # refused before anything was forwarded


@pytest.mark.parametrize("scope", ["llm", "full"])
def test_llm_and_full_scopes_chat_and_list(rules_gateway, client_ip, scope):
    key = rules_gateway.create_key("--scope", scope)["key"]
    client = sdk(rules_gateway, key, client_ip)
    assert client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}]).choices
    assert {m.id for m in client.models.list()} == {"priced", "demo"}


# --- model allow list ------------------------------------------------------------------------------------

def test_model_allow_list(rules_gateway, client_ip):
    key = rules_gateway.create_key("--models", "demo")["key"]
    client = sdk(rules_gateway, key, client_ip)
    assert [m.id for m in client.models.list()] == ["demo"]
    assert client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}]).choices
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="priced", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 403 and refused.value.code == "model_not_allowed"
    assert rules_gateway.models(key, ip=client_ip).status_code == 200
    hidden = rules_gateway.request("GET", "/v1/models/priced", key, ip=client_ip)
    assert hidden.status_code == 404  # a model the key may not use is not shown, not even by id
    assert rules_gateway.request("GET", "/v1/models/demo", key, ip=client_ip).status_code == 200


def test_unknown_model_is_404_not_403_even_with_an_allow_list(rules_gateway, client_ip):
    key = rules_gateway.create_key("--models", "demo")["key"]
    response = rules_gateway.chat(key, "no-such-model", ip=client_ip)
    assert response.status_code == 404 and error_of(response)["code"] == "model_not_found"


# --- IP allow list ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ip_key(rules_gateway):
    return rules_gateway.create_key("--allow-ip", "10.200.0.0/16", "--allow-ip", "2001:db8:42::/48",
                                    "--allow-ip", "192.0.2.77")["key"]


@pytest.mark.parametrize("address", ["10.200.0.1", "10.200.255.254", "192.0.2.77", "2001:db8:42::1",
                                     "2001:db8:42:ffff:ffff:ffff:ffff:ffff", "::ffff:10.200.3.4"])
def test_addresses_inside_the_allow_list_pass(rules_gateway, ip_key, address):
    assert rules_gateway.models(ip_key, ip=address).status_code == 200


@pytest.mark.parametrize("address", ["10.201.0.1", "10.199.255.255", "192.0.2.78", "2001:db8:43::1",
                                     "2001:db8:41:ffff::1", "127.0.0.1"])
def test_addresses_outside_the_allow_list_get_403_without_the_list(rules_gateway, ip_key, address):
    response = rules_gateway.models(ip_key, ip=address)
    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["code"]) == ("permission_error", "ip_not_allowed")
    for fragment in ("10.200", "2001:db8", "192.0.2", "/16", "/48"):
        assert fragment not in response.text


def test_forwarded_for_is_walked_from_the_right(rules_gateway, ip_key):
    # A client can put anything in front; the trusted proxy appends the address it saw.
    assert rules_gateway.models(ip_key, ip="203.0.113.9, 10.200.1.1").status_code == 200
    assert rules_gateway.models(ip_key, ip="10.200.1.1, 203.0.113.9").status_code == 403
    # A trusted hop in the chain is skipped.
    assert rules_gateway.models(ip_key, ip="2001:db8:42::5, 127.0.0.1").status_code == 200


def test_ip_check_comes_before_the_model_and_body(rules_gateway, ip_key):
    response = rules_gateway.request("POST", "/v1/chat/completions", ip_key, {"model": "priced"},
                                     ip="198.51.100.1")
    assert response.status_code == 403 and error_of(response)["code"] == "ip_not_allowed"


@pytest.fixture(scope="module")
def untrusted_gateway(gateway_factory):
    """No trusted proxies: X-Forwarded-For must be ignored. Per-IP limit 5 per minute."""
    return gateway_factory({"PFORTE_RATELIMIT_PER_IP": "5/minute"})


def test_spoofed_forwarded_for_changes_nothing(untrusted_gateway, fresh_window):
    fresh_window(60, 20)
    key = untrusted_gateway.create_key("--allow-ip", "10.0.0.0/8")["key"]
    open_key = untrusted_gateway.create_key()["key"]
    # The allow list sees the socket address 127.0.0.1, whatever the header claims.
    refused = untrusted_gateway.models(key, ip="10.1.2.3")
    assert refused.status_code == 403 and error_of(refused)["code"] == "ip_not_allowed"
    # The per-IP limit counts 127.0.0.1 too (the refused request above included): changing the header every
    # time does not reset it.
    answers = [untrusted_gateway.models(open_key, ip=f"10.9.9.{n}").status_code for n in range(5)]
    assert answers == [200] * 4 + [429]


# --- expiry ----------------------------------------------------------------------------------------------

def test_a_key_expiring_this_second(rules_gateway, client_ip):
    created = rules_gateway.create_key()
    key = created["key"]
    expires = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0, tzinfo=None)
    rules_gateway.execute("UPDATE api_keys SET expires_at = :e WHERE id = :id", e=expires,
                              id=created["row_id"])
    boundary = expires.replace(tzinfo=UTC).timestamp()
    assert time.time() < boundary - 0.2
    assert rules_gateway.models(key, ip=client_ip).status_code == 200
    while time.time() < boundary:  # wait for the clock to reach the expiry second
        time.sleep(0.02)
    response = rules_gateway.models(key, ip=client_ip)
    assert response.status_code == 401
    assert error_of(response)["code"] == "expired_api_key"


# --- credit quota ----------------------------------------------------------------------------------------

def test_quota_runs_out_with_402_and_used_equals_the_log(rules_gateway, client_ip):
    created = rules_gateway.create_key("--quota", "0.2")  # 200,000 micro-credits
    key, row_id = created["key"], created["row_id"]
    statuses, warnings, used_before = [], [], []
    for _ in range(40):
        used_before.append(rules_gateway.key_row(row_id)["used_micro"])
        response = rules_gateway.chat(key, "priced", ip=client_ip, extra={"max_tokens": 30})
        statuses.append(response.status_code)
        warnings.append(response.headers.get("X-RateLimit-Warning"))
        if response.status_code == 402:
            break
    assert statuses[-1] == 402 and set(statuses[:-1]) == {200}
    refused = rules_gateway.chat(key, "priced", ip=client_ip, extra={"max_tokens": 30})
    assert refused.status_code == 402
    assert refused.headers["x-should-retry"] == "false"
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    row = rules_gateway.key_row(row_id)
    assert row["used_micro"] == rules_gateway.log_total(row_id)
    assert row["reserved_micro"] == 0
    assert 200_000 <= row["used_micro"] <= 200_000 + 30 * PRICED_OUTPUT + 10_000
    # From 80 % of the quota on (as used when the request came in), responses carry the warning.
    for used, warning in zip(used_before, warnings, strict=True):
        assert (warning == "approaching-limit") == (used * 5 >= 200_000 * 4)
    assert "approaching-limit" in warnings
    with pytest.raises(openai.APIStatusError) as sdk_refused:
        sdk(rules_gateway, key, client_ip).chat.completions.create(
            model="priced", messages=[{"role": "user", "content": "hi"}])
    assert sdk_refused.value.status_code == 402


# --- the output cap under a budget -----------------------------------------------------------------------

def upstream_body_of(gateway, marker: str) -> dict:
    """The JSON body the fake upstream received for the request whose text contains `marker`."""
    import requests

    recent = requests.get(f"{gateway.upstream.url}/stats", timeout=5).json()["recent"]
    found = [r["json"] for r in recent if r["json"] and marker in str(r["json"].get("messages") or "")
             + str(r["json"].get("prompt") or "")]
    assert len(found) == 1, marker
    return found[0]


def test_the_default_output_cap_goes_upstream_only_under_a_budget(rules_gateway, client_ip):
    """Without max_tokens from the client, a key with a quota reserves the model's default cap (4096): the
    upstream must get that cap, or a long answer would cost more than was reserved. Without a budget, or
    with the client's own cap, the request goes upstream as the client sent it."""
    import uuid

    limited = rules_gateway.create_key("--quota", "100")["key"]
    unlimited = rules_gateway.create_key()["key"]

    def sent(key: str, path: str = "/v1/chat/completions", **extra) -> dict:
        marker = f"cap-{uuid.uuid4().hex}"
        if path.endswith("/chat/completions"):
            body = {"model": "priced", "messages": [{"role": "user", "content": marker}], **extra}
        else:
            body = {"model": "priced", "prompt": marker, **extra}
        response = rules_gateway.request("POST", path, key, body, ip=client_ip)
        assert response.status_code == 200, response.text
        return upstream_body_of(rules_gateway, marker)

    assert sent(limited)["max_tokens"] == 4096
    assert sent(limited, stream=True)["max_tokens"] == 4096
    assert sent(limited, "/v1/completions")["max_tokens"] == 4096
    own = sent(limited, max_tokens=12)
    assert own["max_tokens"] == 12
    own = sent(limited, max_completion_tokens=9)  # and max_tokens, which every OpenAI-style server reads
    assert own["max_completion_tokens"] == 9 and own["max_tokens"] == 9
    for body in (sent(unlimited), sent(unlimited, stream=True), sent(unlimited, "/v1/completions")):
        assert "max_tokens" not in body and "max_completion_tokens" not in body
