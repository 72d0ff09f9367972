"""The "Test connection" probe against a real local HTTP server: request per kind, and what it reports."""
from __future__ import annotations

import socket

from upstream_stub import StubUpstream

from app.providers.base import UpstreamTarget
from app.providers.probe import probe_connection

KEY = "sk-probe-secret-4711"


def target(kind: str, base_url: str, **kwargs) -> UpstreamTarget:
    api_key = kwargs.pop("api_key", KEY)
    return UpstreamTarget(connection_id=1, name="t", kind=kind, base_url=base_url, api_key=api_key, **kwargs)


def test_openai_compatible_lists_models_with_a_bearer_token():
    with StubUpstream() as upstream:
        result = probe_connection(target("openai", f"{upstream.url}/v1"))
    assert result.ok and result.status == 200
    assert result.models == ("gpt-test-1", "gpt-test-2") and result.model_count == 2
    assert result.latency_ms is not None and result.latency_ms >= 0
    [request] = upstream.requests
    assert request["path"] == "/v1/models"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"


def test_openai_compatible_without_key_sends_no_authorization():
    with StubUpstream() as upstream:
        assert probe_connection(target("openai", f"{upstream.url}/v1", api_key=None)).ok
    assert "authorization" not in upstream.requests[0]["headers"]


def test_azure_uses_the_api_key_header_and_api_version():
    with StubUpstream() as upstream:
        for base in (upstream.url, f"{upstream.url}/openai", f"{upstream.url}/openai/deployments/gpt4o"):
            assert probe_connection(target("azure", base, api_version="2025-01-01-preview")).ok
        assert probe_connection(target("azure", upstream.url)).ok  # the provider's default version
        assert probe_connection(target("azure", f"{upstream.url}/openai/v1")).ok
    assert [r["path"] for r in upstream.requests] == ["/openai/models?api-version=2025-01-01-preview"] * 3 + [
        "/openai/models?api-version=2024-10-21", "/openai/v1/models"]
    for request in upstream.requests:
        assert request["headers"]["api-key"] == KEY and "authorization" not in request["headers"]


def test_anthropic_uses_x_api_key_and_a_version_header():
    with StubUpstream() as upstream:
        assert probe_connection(target("anthropic", upstream.url)).ok
        assert probe_connection(target("anthropic", f"{upstream.url}/v1")).ok
    assert [r["path"] for r in upstream.requests] == ["/v1/models", "/v1/models"]
    headers = upstream.requests[0]["headers"]
    assert headers["x-api-key"] == KEY and headers["anthropic-version"]


def test_demo_answers_without_network():
    result = probe_connection(target("demo", "", api_key=None))
    assert result.ok and result.demo and result.url is None


def test_an_upstream_error_is_reported_with_its_message_and_the_key_scrubbed():
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    with StubUpstream(status=401, body=body) as upstream:
        result = probe_connection(target("openai", f"{upstream.url}/v1"))
    assert not result.ok and result.status == 401 and result.error_kind == "http"
    assert result.detail == "Incorrect API key provided: [redacted]"


def test_an_answer_that_is_no_model_list_is_reported():
    with StubUpstream(body=b"<html>login page</html>") as upstream:
        result = probe_connection(target("openai", upstream.url))
    assert not result.ok and result.error_kind == "invalid_response" and "login page" in result.detail


def test_redirects_are_reported_not_followed():
    with StubUpstream(status=302, headers={"Location": "http://elsewhere.test/v1/models"}) as upstream:
        result = probe_connection(target("openai", f"{upstream.url}/v1"))
    assert result.error_kind == "redirect" and result.detail == "http://elsewhere.test/v1/models"
    assert len(upstream.requests) == 1


def test_nothing_listening_is_a_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = probe_connection(target("openai", f"http://127.0.0.1:{port}/v1"))
    assert not result.ok and result.error_kind == "connect" and result.status is None


def test_a_slow_upstream_is_a_timeout():
    with StubUpstream(delay=2.0) as upstream:
        result = probe_connection(target("openai", f"{upstream.url}/v1", read_timeout=0.3))
    assert not result.ok and result.error_kind == "timeout"
    assert 250 <= result.latency_ms < 1900
