"""Documented request fields of the wrong type are a 400 that names the field, on every endpoint, and
nothing goes upstream; integers written as integral floats (16.0) are integers, as JSON Schema says."""
from __future__ import annotations

import pytest
from api_helpers import user

CHAT = {"model": "gpt-test", "messages": user("Hallo")}
COMPLETIONS = {"model": "gpt-test", "prompt": "Hallo"}
MESSAGES = {"model": "gpt-test", "max_tokens": 20, "messages": user("Hallo")}
RESPONSES = {"model": "gpt-test", "input": "Hallo"}

WRONG = [
    ("/v1/chat/completions", CHAT, "temperature", "hot"),
    ("/v1/chat/completions", CHAT, "temperature", True),
    ("/v1/chat/completions", CHAT, "top_p", []),
    ("/v1/chat/completions", CHAT, "seed", 1.5),
    ("/v1/chat/completions", CHAT, "seed", "text"),
    ("/v1/chat/completions", CHAT, "stop", True),
    ("/v1/chat/completions", CHAT, "stop", {}),
    ("/v1/chat/completions", CHAT, "tools", True),
    ("/v1/chat/completions", CHAT, "tools", {}),
    ("/v1/chat/completions", CHAT, "tool_choice", []),
    ("/v1/chat/completions", CHAT, "response_format", True),
    ("/v1/chat/completions", CHAT, "user", 7),
    ("/v1/completions", COMPLETIONS, "prompt", []),
    ("/v1/completions", COMPLETIONS, "temperature", "hot"),
    ("/v1/messages", MESSAGES, "system", True),
    ("/v1/messages", MESSAGES, "system", -3),
    ("/v1/messages", MESSAGES, "tools", "text"),
    ("/v1/messages", MESSAGES, "stop_sequences", "STOP"),
    ("/v1/messages", MESSAGES, "temperature", {}),
    ("/v1/messages", MESSAGES, "tool_choice", "auto"),
    ("/v1/messages", MESSAGES, "messages", []),
    ("/v1/responses", RESPONSES, "parallel_tool_calls", "yes"),
    ("/v1/responses", RESPONSES, "user", ["x"]),
    ("/v1/responses", RESPONSES, "temperature", "hot"),
]


@pytest.mark.parametrize(("path", "base", "field", "value"), WRONG,
                         ids=[f"{p.rsplit('/', 1)[1]}-{f}-{v!r}" for p, _b, f, v in WRONG])
def test_a_field_of_the_wrong_type_is_a_400_naming_it(gateway, path, base, field, value):
    before = forwarded(gateway)
    answer = gateway.post(path, {**base, field: value})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert field in error["message"]
    if path != "/v1/messages":  # the Anthropic error shape has no param
        assert error["param"] == field
    assert forwarded(gateway) == before  # nothing went upstream


def forwarded(gateway) -> dict:
    """Requests the fake upstream received per path, its own /stats left out."""
    return {path: n for path, n in gateway.upstream_stats()["by_path"].items() if path != "/stats"}


def test_null_counts_as_absent(gateway):
    answer = gateway.post("/v1/chat/completions", {**CHAT, "temperature": None, "stop": None, "tools": None})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("path", "base", "field", "sent_as"), [
    ("/v1/chat/completions", CHAT, "max_tokens", "max_tokens"),
    ("/v1/messages", MESSAGES, "max_tokens", "max_tokens"),
    ("/v1/responses", RESPONSES, "max_output_tokens", "max_tokens"),
])
def test_an_integral_float_is_an_integer(gateway, path, base, field, sent_as):
    answer = gateway.post(path, {**base, field: 16.0})
    assert answer.status_code == 200, answer.text
    sent = gateway.last_upstream_request()["json"][sent_as]
    assert sent == 16 and isinstance(sent, int)
