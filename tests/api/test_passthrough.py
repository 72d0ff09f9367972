"""Request options that cost extra or keep data at the provider (service_tier, store, web_search_options,
Anthropic server tools, anthropic-beta) reach the upstream only over a connection that allows them; the
sampling options of vLLM, Ollama and llama.cpp always pass. Checked by what the fake upstream received."""
from __future__ import annotations

import json

import pytest
import requests
from anthropic_catalog import CLAUDE, anthropic_catalog, upstream_messages_requests  # noqa: F401
from api_helpers import user, wait_for

pytestmark = pytest.mark.usefixtures("anthropic_catalog")

PAID = {"service_tier": "priority", "store": True, "web_search_options": {"search_context_size": "high"}}
SAMPLING = {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "guided_json": {"type": "object"},
            "num_ctx": 8192, "mirostat": 2}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
_prepared: set[str] = set()


@pytest.fixture
def open_models(gateway):
    """gpt-open and claude-open, on connections that allow the options; gpt-flip's connection is changed by
    the CLI test."""
    if gateway.url not in _prepared:
        cli = gateway.server.setup_cli
        upstream = gateway.upstream.url
        cli("connections", "add", "--name", "fake-open", "--kind", "openai", "--base-url", f"{upstream}/v1",
            "--api-key-env", "FAKE_UPSTREAM_KEY", "--allow-passthrough")
        cli("connections", "add", "--name", "fake-anthropic-open", "--kind", "anthropic", "--base-url",
            upstream, "--api-key-env", "FAKE_UPSTREAM_KEY", "--allow-passthrough")
        cli("connections", "add", "--name", "fake-flip", "--kind", "openai", "--base-url", f"{upstream}/v1")
        cli("models", "add", "--id", "gpt-open", "--connection", "fake-open", "--upstream-model", "gpt-fake")
        cli("models", "add", "--id", "claude-open", "--connection", "fake-anthropic-open",
            "--upstream-model", "claude-fake")
        cli("models", "add", "--id", "gpt-flip", "--connection", "fake-flip", "--upstream-model", "gpt-fake")
        wait_for(lambda: gateway.post("/v1/chat/completions", chat("gpt-flip")).status_code == 200)
        _prepared.add(gateway.url)
    return gateway


def chat(model: str, **extra) -> dict:
    return {"model": model, "messages": user("Hallo"), **extra}


def arrived(gateway, path: str = "/v1/chat/completions") -> dict:
    return next(r for r in reversed(gateway.upstream_stats()["recent"]) if r["path"].endswith(path))


def test_paid_options_are_stripped_by_default_and_sampling_options_pass(open_models):
    gateway = open_models
    for model, path in (("gpt-test", "/v1/chat/completions"), ("azure-test", "/chat/completions")):
        answer = gateway.post("/v1/chat/completions", chat(model, **PAID, **SAMPLING))
        assert answer.status_code == 200, answer.text
        body = arrived(gateway, path)["json"]
        assert not PAID.keys() & body.keys(), (model, body)
        assert {name: body[name] for name in SAMPLING} == SAMPLING, model
    streamed = gateway.post("/v1/chat/completions", chat("gpt-test", stream=True, **PAID, **SAMPLING))
    assert streamed.status_code == 200 and b"[DONE]" in streamed.content
    body = arrived(gateway)["json"]
    assert not PAID.keys() & body.keys() and body["top_k"] == 20


def test_a_connection_that_allows_them_passes_them(open_models):
    gateway = open_models
    answer = gateway.post("/v1/chat/completions", chat("gpt-open", **PAID, **SAMPLING))
    assert answer.status_code == 200, answer.text
    body = arrived(gateway)["json"]
    assert {name: body[name] for name in (*PAID, *SAMPLING)} == {**PAID, **SAMPLING}


def test_responses_store_never_reaches_a_chat_upstream(open_models):
    """On /v1/responses `store` is Pforte's own switch: not even an allowing connection gets it."""
    gateway = open_models
    for model in ("gpt-test", "gpt-open"):
        answer = gateway.post("/v1/responses", {"model": model, "input": "Hallo", "store": True})
        assert answer.status_code == 200, answer.text
        assert "store" not in arrived(gateway)["json"], model


def test_anthropic_betas_service_tier_and_server_tools_by_default(open_models):
    gateway = open_models
    headers = {"anthropic-beta": "context-1m-2025-08-07", "anthropic-version": "2023-06-01"}
    body = {"model": CLAUDE, "max_tokens": 50, "messages": user("Hallo"), "service_tier": "auto", "top_k": 5}
    answer = gateway.post("/v1/messages", body, headers=headers)
    assert answer.status_code == 200, answer.text
    sent = upstream_messages_requests(gateway)[-1]
    assert "anthropic-beta" not in sent["headers"]
    assert "service_tier" not in sent["json"] and sent["json"]["top_k"] == 5

    before = len(upstream_messages_requests(gateway))
    refused = gateway.post("/v1/messages", {**body, "tools": [WEB_SEARCH]}, headers=headers)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "web_search_20250305" in error["error"]["message"]
    mcp = gateway.post("/v1/messages", {**body, "mcp_servers": [{"type": "url", "url": "https://x"}]},
                       headers=headers)
    assert mcp.status_code == 400, mcp.text
    assert len(upstream_messages_requests(gateway)) == before, "nothing went upstream"
    row = wait_for(lambda: gateway.log_row(refused.headers["x-request-id"]))
    assert row["status"] == 400


def test_an_anthropic_connection_that_allows_them_passes_them(open_models):
    gateway = open_models
    tool = {"name": "weather", "input_schema": {"type": "object", "properties": {}}}
    headers = {"anthropic-beta": "context-1m-2025-08-07", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-open", "max_tokens": 50, "messages": user("Hallo"), "service_tier": "auto",
            "tools": [WEB_SEARCH, tool], "tool_choice": {"type": "tool", "name": "weather"}}
    answer = gateway.post("/v1/messages", body, headers=headers)
    assert answer.status_code == 200, answer.text
    sent = upstream_messages_requests(gateway)[-1]
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent["json"]["service_tier"] == "auto" and sent["json"]["tools"][0] == WEB_SEARCH


def test_the_cli_switches_a_connection_and_the_change_is_audited(open_models):
    gateway = open_models
    cli = gateway.server.setup_cli

    def passes() -> bool:
        answer = gateway.post("/v1/chat/completions", chat("gpt-flip", **PAID))
        assert answer.status_code == 200, answer.text
        return "service_tier" in arrived(gateway)["json"]

    assert not passes()
    cli("connections", "update", "fake-flip", "--allow-passthrough")
    wait_for(passes)
    listed = {row["name"]: row for row in json.loads(cli("connections", "list", "--json").stdout)}
    assert listed["fake-flip"]["allow_passthrough"] is True
    cli("connections", "update", "fake-flip", "--no-allow-passthrough")
    wait_for(lambda: not passes())
    events = gateway.query("SELECT before, after FROM audit_events WHERE action = 'connection.update' "
                           "AND target_name = 'fake-flip' ORDER BY id")
    changes = [(json.loads(e["before"])["allow_passthrough"], json.loads(e["after"])["allow_passthrough"])
               for e in events]
    assert changes == [(False, True), (True, False)]
    assert requests.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
