"""Which proxy and which CA bundle the upstream transport uses (app/providers/proxy.py, transport.py)."""
from __future__ import annotations

import base64

import pytest

from app.providers import transport
from app.providers.base import UpstreamError, UpstreamTarget
from app.providers.proxy import proxy_for

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                   "all_proxy", "ALL_PROXY", "REQUEST_METHOD")


@pytest.fixture
def environment(monkeypatch):
    for name in PROXY_VARIABLES + ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_proxy_variables_means_direct(environment):
    assert proxy_for("https", "api.openai.com") is None


def test_proxies_per_scheme_and_no_proxy(environment):
    environment.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.corp:3128")
    environment.setenv("HTTP_PROXY", "proxy.corp:8080")
    environment.setenv("NO_PROXY", "localhost,.internal")
    secure = proxy_for("https", "api.openai.com")
    assert (secure.host, secure.port) == ("proxy.corp", 3128)
    assert secure.authorization == "Basic " + base64.b64encode(b"user:p@ss").decode()
    plain = proxy_for("http", "vllm.example.com")
    assert (plain.host, plain.port, plain.authorization) == ("proxy.corp", 8080, None)
    assert proxy_for("https", "localhost") is None
    assert proxy_for("http", "gpu1.internal") is None


def test_unsupported_proxy_scheme_is_a_503(environment):
    environment.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.corp:1080")
    target = UpstreamTarget(1, "x", "openai", "https://api.openai.com/v1", None)
    with pytest.raises(UpstreamError) as caught:
        transport.HttpTransport().send(target, "https://api.openai.com/v1/models", b"", {}, method="GET")
    assert caught.value.status == 503 and "only http:// proxies" in caught.value.message
    assert "secret" not in caught.value.message


def test_ca_bundle_setting_then_environment(environment, tmp_path):
    assert transport.HttpTransport().ca_bundle is None
    environment.setenv("SSL_CERT_FILE", "/from/ssl-cert-file")
    assert transport.HttpTransport().ca_bundle == "/from/ssl-cert-file"
    environment.setenv("REQUESTS_CA_BUNDLE", "/from/requests")
    assert transport.HttpTransport().ca_bundle == "/from/requests"
    assert transport.HttpTransport(ca_bundle="/from/setting").ca_bundle == "/from/setting"


def test_a_missing_ca_bundle_is_a_503_not_a_crash(environment, tmp_path):
    target = UpstreamTarget(1, "x", "openai", "https://127.0.0.1:9/v1", None, connect_timeout=1)
    with pytest.raises(UpstreamError) as caught:
        transport.HttpTransport(ca_bundle=str(tmp_path / "missing.pem")).send(
            target, "https://127.0.0.1:9/v1/models", b"", {}, method="GET")
    assert caught.value.status == 503 and "CA bundle" in caught.value.message
    assert "missing.pem" not in caught.value.message
