"""Types of the optional request fields that each endpoint documents, checked before anything goes upstream.

A field of the wrong type (`"temperature": "hot"`, `"tools": true`) is a 400 that names the field, never a
request that the upstream answers in its own way or bills. `null` counts as absent, as the APIs treat it.
Integers may be written as integral floats (`16.0`), as JSON Schema allows; they are made ints in place.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

KINDS = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "strings": "a string or an array of strings",
    "choice": "a string or an object",
    "text": "a string or an array of content blocks",
}

_SAMPLING = {"temperature": "number", "top_p": "number"}
CHAT = {**_SAMPLING, "frequency_penalty": "number", "presence_penalty": "number", "seed": "integer",
        "stop": "strings", "tools": "array", "tool_choice": "choice", "response_format": "object",
        "user": "string", "parallel_tool_calls": "boolean", "logprobs": "boolean", "top_logprobs": "integer",
        "logit_bias": "object", "stream": "boolean", "metadata": "object"}
COMPLETIONS = {**_SAMPLING, "frequency_penalty": "number", "presence_penalty": "number", "seed": "integer",
               "stop": "strings", "user": "string", "echo": "boolean", "best_of": "integer",
               "logprobs": "integer", "suffix": "string", "stream": "boolean", "logit_bias": "object"}
MESSAGES = {**_SAMPLING, "top_k": "integer", "system": "text", "tools": "array", "tool_choice": "object",
            "stop_sequences": "array", "metadata": "object", "stream": "boolean"}
RESPONSES = {**_SAMPLING, "parallel_tool_calls": "boolean", "user": "string", "tool_choice": "choice",
             "stream": "boolean", "prompt_cache_key": "string", "top_logprobs": "integer"}


def integer(value) -> int | None:
    """`value` as an int if it is one (an integral float included), else None; booleans are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def check_types(body: dict, spec: Mapping[str, str], error: Callable[[str, str], Exception]) -> None:
    """Raise error(message, field) for the first field of `body` whose type is not the one `spec` names."""
    for name, kind in spec.items():
        value = body.get(name)
        if value is None:
            continue
        if kind == "integer":
            number = integer(value)
            if number is not None:
                body[name] = number
                continue
        elif _fits(kind, value):
            continue
        raise error(f"'{name}' must be {KINDS[kind]}.", name)


def _fits(kind: str, value) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "strings":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if kind == "choice":
        return isinstance(value, str | dict)
    if kind == "text":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, dict) for v in value))
    raise ValueError(f"unknown field kind {kind!r}")
