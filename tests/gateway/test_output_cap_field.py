"""Which request field carries the gateway's default output cap to the upstream."""
from __future__ import annotations

import pytest

from app.catalog.entries import ModelEntry
from app.gateway.pipeline import Call, cap_field
from app.providers.base import UpstreamTarget


def call_for(base_url: str, endpoint: str) -> Call:
    target = UpstreamTarget(1, "up", "openai", base_url, None)
    model = ModelEntry(1, "m", "m", "m", True, 1.0, 1.0, target=target)
    return Call(endpoint=endpoint, request_id="req_test", started=0.0, model=model)


@pytest.mark.parametrize("base_url, endpoint, field", [
    ("https://api.openai.com/v1", "chat", "max_completion_tokens"),
    ("https://api.openai.com/v1", "completions", "max_tokens"),
    ("https://api.openai.com/v1", "responses", "max_completion_tokens"),  # /v1/responses, translated to chat
    ("http://vllm.intern:8000/v1", "responses", "max_tokens"),
    ("http://vllm.intern:8000/v1", "chat", "max_tokens"),
    ("http://127.0.0.1:11434/v1", "chat", "max_tokens"),
])
def test_cap_field(base_url, endpoint, field):
    assert cap_field(call_for(base_url, endpoint)) == field
