"""A hand-written corpus of hostile request bodies against a live `pforte serve`: invalid UTF-8, numbers too
large for any field, NaN and Infinity, wrong types for the documented fields, 10 MB strings, deeply nested
JSON. Each gets a clear 4xx in the endpoint's error shape, the process keeps serving, and nothing is lost:
every answer has its request-log row and the bookkeeping invariants hold afterwards.

(HTTP framing cases such as `Content-Length : 5` belong to app/server.py's own tests.)
"""
from __future__ import annotations

import json

import pytest
import requests
from support.proof import every_request_settled, proof_gateway

MAX_BODY_BYTES = 1024 * 1024
ENDPOINTS = {
    "/v1/chat/completions": {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/completions": {"model": "gpt-test", "prompt": "Hi"},
    "/v1/embeddings": {"model": "embed-test", "input": "Hi"},
    "/v1/messages": {"model": "claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/responses": {"model": "gpt-test", "input": "Hi"},
}
ANTHROPIC = {"/v1/messages"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with proof_gateway(tmp_path_factory.mktemp("hostile"),
                       env={"PFORTE_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def answered(gateway):
    """The request ids of every answer in this module, checked against the request log at the end."""
    with every_request_settled(gateway) as ids:
        yield ids


def _post(gateway, path: str, data: bytes) -> requests.Response:
    return requests.post(f"{gateway.url}{path}", data=data, timeout=60,
                         headers={"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json"})


def assert_clear_4xx(answer: requests.Response, path: str, answered: list[str]) -> None:
    """A 4xx in the endpoint's error shape with a message, and a request id."""
    assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    body = answer.json()
    if path in ANTHROPIC:
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"], body
    else:
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"], body
    answered.append(answer.headers["x-request-id"])


def _raw(base: dict, field: str, literal: str) -> bytes:
    """base with `field` set to a raw JSON literal (e.g. NaN, which json.dumps would not write)."""
    marker = "__HOSTILE__"
    return json.dumps({**base, field: marker}).replace(f'"{marker}"', literal).encode()


CASES = {
    "invalid utf-8 in a string": lambda base: json.dumps(base).encode().replace(b'"Hi"', b'"H\xff\xfei"'),
    "invalid utf-8 (a lone surrogate escape)": lambda base: json.dumps(base).encode().replace(b'"Hi"',
                                                                                               b'"\\ud800"'),
    "latin-1 body": lambda base: json.dumps(base, ensure_ascii=False).replace("Hi", "Grüß").encode("latin-1"),
    "not JSON": lambda base: b"{model: gpt-test",
    "a JSON array": lambda base: b"[1, 2, 3]",
    "a JSON string": lambda base: b'"hello"',
    "empty body": lambda base: b"",
    "NaN temperature": lambda base: _raw(base, "temperature", "NaN"),
    "Infinity temperature": lambda base: _raw(base, "temperature", "Infinity"),
    "-Infinity top_p": lambda base: _raw(base, "top_p", "-Infinity"),
    "temperature overflows to inf": lambda base: _raw(base, "temperature", "1e400"),
    "a 400-digit max_tokens": lambda base: _raw(base, "max_tokens", "1" + "0" * 400),
    "a 5000-digit integer": lambda base: _raw(base, "seed", "9" * 5000),
    "max_tokens 2**64": lambda base: _raw(base, "max_tokens", str(2 ** 64)),
    "max_tokens -1": lambda base: _raw(base, "max_tokens", "-1"),
    "model of wrong type": lambda base: _raw(base, "model", "42"),
    "model null": lambda base: _raw(base, "model", "null"),
    "model an object": lambda base: _raw(base, "model", '{"id": "gpt-test"}'),
    "10 MB string": lambda base: json.dumps({**base, "user": "x" * (10 * 1024 * 1024)}).encode(),
    "nested 100000 lists deep": lambda base: _raw(base, "metadata", "[" * 100_000 + "]" * 100_000),
    "nested 100000 objects deep": lambda base: _raw(base, "metadata", '{"a":' * 100_000 + "1" + "}" * 100_000),
    "duplicate keys, the last one wrong": lambda base: json.dumps(base).encode()[:-1] + b', "model": 7}',
}


# Cases that are no error for an endpoint (a field it does not know goes upstream as it is).
NOT_FOR = {"max_tokens -1": {"/v1/embeddings", "/v1/responses"}}


@pytest.mark.parametrize(("case", "path"), [(case, path) for case in sorted(CASES) for path in sorted(ENDPOINTS)
                                            if path not in NOT_FOR.get(case, ())])
def test_hostile_body_gets_a_clear_4xx(gateway, answered, case, path):
    answer = _post(gateway, path, CASES[case](ENDPOINTS[path]))
    assert_clear_4xx(answer, path, answered)


WRONG_VALUES = (True, -3, 1.5, "text", [], {}, [None], {"": None})
# The fields whose type the gateway itself checks (the others pass through to the upstream, which answers
# for them); each of them, sent with a value of a wrong type, is a 400.
CHECKED_FIELDS = {
    "/v1/chat/completions": {"model": {"type": "string"}, "messages": {"type": "array"},
                             "stream": {"type": "boolean"}, "stream_options": {"type": "object"},
                             "max_tokens": {"type": "integer"}, "max_completion_tokens": {"type": "integer"},
                             "n": {"type": "integer"}},
    "/v1/completions": {"model": {"type": "string"}, "prompt": {"type": ["string", "array"]},
                        "max_tokens": {"type": "integer"}, "n": {"type": "integer"}},
    "/v1/embeddings": {"model": {"type": "string"}, "input": {"type": ["string", "array"]},
                       "encoding_format": {"enum": ["float", "base64"]}, "dimensions": {"type": "integer"}},
    "/v1/messages": {"model": {"type": "string"}, "messages": {"type": "array"},
                     "max_tokens": {"type": "integer"}},
    "/v1/responses": {"model": {"type": "string"}, "input": {"type": ["string", "array"]},
                      "instructions": {"type": "string"}, "max_output_tokens": {"type": "integer"},
                      "stream": {"type": "boolean"}},
}


def _type_of(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


NON_EMPTY = {("/v1/chat/completions", "messages"), ("/v1/embeddings", "input"), ("/v1/responses", "input")}


def _accepts(path: str, field: str, schema: dict, value) -> bool:
    if "enum" in schema:
        return value in schema["enum"]
    types = schema["type"]
    types = [types] if isinstance(types, str) else types
    if (path, field) in NON_EMPTY and value in ([], [None]):
        return False
    return _type_of(value) in types


def _wrong_type_cases():
    for path, fields in sorted(CHECKED_FIELDS.items()):
        for field, schema in sorted(fields.items()):
            wrong = [value for value in WRONG_VALUES if not _accepts(path, field, schema, value)]
            yield pytest.param(path, field, wrong, id=f"{path}-{field}")


@pytest.mark.parametrize(("path", "field", "values"), list(_wrong_type_cases()))
def test_a_checked_field_of_the_wrong_type_gets_a_clear_4xx(gateway, answered, path, field, values):
    for value in values:
        answer = _post(gateway, path, json.dumps({**ENDPOINTS[path], field: value}).encode())
        assert_clear_4xx(answer, path, answered)


def test_embeddings_input_items_of_the_wrong_type_get_a_400(gateway, answered):
    for items in ([None], ["a", None], [{"text": "a"}], [[1, "a"]], [True]):
        answer = _post(gateway, "/v1/embeddings", json.dumps({"model": "demo", "input": items}).encode())
        assert answer.status_code == 400, (items, answer.text)
        assert answer.json()["error"]["param"] == "input"
        answered.append(answer.headers["x-request-id"])
    answer = _post(gateway, "/v1/embeddings", json.dumps({"model": "demo", "input": [[1, 2], [3]]}).encode())
    assert answer.status_code == 200, answer.text
    answered.append(answer.headers["x-request-id"])


def test_the_process_still_serves_after_the_corpus(gateway, answered):
    answer = gateway.chat("Still there?")
    assert answer.status_code == 200, answer.text
    answered.append(answer.headers["x-request-id"])
