"""No header value that the transport writes upstream carries CR, LF or NUL (app/providers/transport.py):
such a value would end its header line and inject others (or a second request). Credentials are checked
when saved and client headers when read (app/request_headers.py); the transport refuses what slips by."""
from __future__ import annotations

import pytest
import requests

from app.providers import transport
from app.providers.base import UpstreamError, UpstreamTarget


@pytest.mark.parametrize("value", ["beta\r\nX-Injected: yes", "beta\nX-Injected: yes", "beta\rX-Injected: yes",
                                   "beta\x00"])
def test_a_header_value_with_a_line_break_is_never_sent(fake_upstream, value):
    requests.post(f"{fake_upstream.url}/stats/reset", timeout=5)
    target = UpstreamTarget(1, "fake", "openai", f"{fake_upstream.url}/v1", "sk-up")
    with pytest.raises(UpstreamError) as refused:
        transport.HttpTransport().send(target, f"{fake_upstream.url}/v1/models", b"",
                                       {"Authorization": "Bearer sk-up", "anthropic-beta": value}, method="GET")
    assert refused.value.status == 503 and refused.value.code == "upstream_unavailable"
    assert "line break" in refused.value.message and "anthropic-beta" in refused.value.message
    assert "sk-up" not in refused.value.message
    stats = requests.get(f"{fake_upstream.url}/stats", timeout=5).json()
    assert stats["recent"] == [], stats  # nothing reached the upstream


def test_a_header_name_with_a_line_break_is_never_sent(fake_upstream):
    target = UpstreamTarget(1, "fake", "openai", f"{fake_upstream.url}/v1", None)
    with pytest.raises(UpstreamError):
        transport.HttpTransport().send(target, f"{fake_upstream.url}/v1/models", b"", {"X-A\r\nX-B": "v"},
                                       method="GET")


def test_clean_headers_are_sent_as_given(fake_upstream):
    target = UpstreamTarget(1, "fake", "openai", f"{fake_upstream.url}/v1", None)
    response = transport.HttpTransport().send(target, f"{fake_upstream.url}/v1/models", b"",
                                              {"anthropic-beta": "a, b\tc"}, method="GET")
    response.read()
    sent = requests.get(f"{fake_upstream.url}/stats", timeout=5).json()["recent"][-1]
    assert sent["headers"]["anthropic-beta"] == "a, b\tc"
