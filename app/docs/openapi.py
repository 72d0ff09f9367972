"""The OpenAPI 3.1 description of the client API (served at /v1/openapi.json), and the error table that
the API docs page shows. Built from plain dicts; it describes what app/gateway accepts and answers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

VERSION = "0.1.0"

# The error table of docs/architecture.md, in the order the docs page lists them: (status, type, code, when).
ERRORS = (
    (400, "invalid_request_error", "invalid_request", _l("Malformed JSON, a missing or wrong field.")),
    (413, "invalid_request_error", "request_too_large", _l("The request body is larger than the limit.")),
    (
        401,
        "invalid_request_error",
        "invalid_api_key",
        _l("No key, or an unknown, malformed, revoked or disabled key."),
    ),
    (401, "invalid_request_error", "expired_api_key", _l("The key has expired.")),
    (
        402,
        "insufficient_quota",
        "insufficient_quota",
        _l("The key's credit quota or the organisation's allowance is used up (x-should-retry: false)."),
    ),
    (403, "permission_error", "scope_not_allowed", _l("The key's scope does not cover this endpoint.")),
    (403, "permission_error", "ip_not_allowed", _l("The client address is not on the key's allow list.")),
    (403, "permission_error", "model_not_allowed", _l("The key may not use this model.")),
    (404, "invalid_request_error", "model_not_found", _l("Unknown or disabled model.")),
    (404, "invalid_request_error", "unknown_url", _l("Unknown route.")),
    (
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        _l(
            "A rate or concurrency limit was reached; retry-after says how many seconds to wait (at most 60)."
        ),
    ),
    (502, "server_error", "upstream_error", _l("The upstream model server answered with an error.")),
    (503, "server_error", "upstream_unavailable", _l("The upstream model server cannot be reached.")),
    (504, "server_error", "upstream_timeout", _l("The upstream model server did not answer in time.")),
    (500, "server_error", "internal_error", _l("Anything else; the details are only in the server log.")),
)

RATE_LIMIT_HEADERS = (
    ("x-ratelimit-limit-requests", _l("Requests allowed in the tightest window of the key's limits.")),
    ("x-ratelimit-remaining-requests", _l("Requests left in that window.")),
    ("x-ratelimit-reset-requests", _l("Time until the window resets, e.g. 7s or 1m0s.")),
    ("X-RateLimit-Limit / X-RateLimit-Remaining", _l("The same numbers under their common names.")),
    ("X-RateLimit-Reset", _l("When the window resets (Unix time in seconds).")),
    ("X-RateLimit-Window", _l("The window's length in seconds.")),
    ("X-RateLimit-Warning", _l("Present from 80 % of a monthly request limit or credit quota.")),
    ("retry-after", _l("On 429: seconds to wait before retrying (at most 60).")),
    ("x-should-retry", _l("false where retrying cannot help (402; 429 for a used-up monthly limit; 502 when the "
                            "upstream refused Pforte's credentials or does not know the model), so that SDKs do "
                            "not retry.")),
    ("x-request-id", _l("On every answer: quote it when you ask the administrator about a request.")),
    ("x-pforte-dropped-tools", _l("On /v1/responses: the tools of the request that the model's server cannot run "
                                  "and that were left out, e.g. web_search, namespace:mcp.")),
)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number", "boolean"))
TEXT_PARTS = {
    "type": "array",
    "items": {"type": "object", "required": ["type"], "properties": {"type": STRING, "text": STRING}},
}

def _object(type_name: str, **required: dict) -> dict:
    """An object whose `type` is type_name and which has all the given properties."""
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {"type": {"const": type_name}, **required},
    }


def _other_type(*known: str) -> dict:
    """Any object whose `type` is none of the known ones (passed on from the upstream as it is)."""
    return {"type": "object", "required": ["type"],
            "properties": {"type": {"type": "string", "not": {"enum": list(known)}}}}


ANTHROPIC_USAGE = {
    "input_tokens": INTEGER,
    "output_tokens": INTEGER,
    "cache_creation_input_tokens": _nullable(INTEGER),
    "cache_read_input_tokens": _nullable(INTEGER),
}


SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": STRING,
                    "type": STRING,
                    "param": _nullable(STRING),
                    "code": _nullable(STRING),
                    "retry_after": {"type": "integer", "minimum": 0, "maximum": 60},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": STRING, "message": STRING},
            },
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role"],
        "additionalProperties": True,
        "properties": {
            "role": {"type": "string", "examples": ["system", "developer", "user", "assistant", "tool"]},
            "content": {"anyOf": [STRING, {"type": "array", "items": {"type": "object"}}, {"type": "null"}]},
            "name": STRING,
            "tool_call_id": STRING,
            "tool_calls": {"type": "array", "items": _ref("ToolCall")},
        },
    },
    "ToolCall": {
        "type": "object",
        "required": ["id", "type", "function"],
        "properties": {
            "id": STRING,
            "type": {"const": "function"},
            "function": {
                "type": "object",
                "required": ["name", "arguments"],
                "properties": {"name": STRING, "arguments": STRING},
            },
        },
    },
    "StreamOptions": {"type": "object", "properties": {"include_usage": BOOLEAN}},
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1, "description": "A model id from GET /models."},
            "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
            "stream": {"type": ["boolean", "null"], "default": False},
            "stream_options": _ref("StreamOptions"),
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": NUMBER,
            "n": {"type": "integer", "minimum": 0},
            "seed": INTEGER,
            "stop": {"anyOf": [STRING, {"type": "array", "items": STRING}, {"type": "null"}]},
            "max_tokens": {"type": "integer", "minimum": 0, "description": "Alias of max_completion_tokens."},
            "max_completion_tokens": {"type": "integer", "minimum": 0},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
            "response_format": {"type": "object"},
            "user": STRING,
        },
    },
    "Usage": {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": INTEGER,
            "completion_tokens": INTEGER,
            "total_tokens": INTEGER,
            "prompt_tokens_details": {"type": "object"},
            "completion_tokens_details": {"type": "object"},
        },
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": STRING,
            "object": {"const": "chat.completion"},
            "created": INTEGER,
            "model": STRING,
            "system_fingerprint": _nullable(STRING),
            "usage": _ref("Usage"),
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": INTEGER,
                        "logprobs": {},
                        "finish_reason": _nullable(STRING),
                        "message": {
                            "type": "object",
                            "required": ["role", "content"],
                            "properties": {
                                "role": {"const": "assistant"},
                                "content": _nullable(STRING),
                                "refusal": _nullable(STRING),
                                "tool_calls": {"type": "array", "items": _ref("ToolCall")},
                            },
                        },
                    },
                },
            },
        },
    },
    "ChatCompletionChunk": {
        "description": "One server-sent event `data: <chunk>` of a streamed chat completion. The stream ends "
        "with `data: [DONE]`. With stream_options.include_usage the last chunk has no choices "
        "and carries the usage. An error after the stream started arrives as one "
        '`data: {"error": {...}}` event.',
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": STRING,
            "object": {"const": "chat.completion.chunk"},
            "created": INTEGER,
            "model": STRING,
            "system_fingerprint": _nullable(STRING),
            "usage": _nullable(_ref("Usage")),
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "delta"],
                    "properties": {
                        "index": INTEGER,
                        "delta": {"type": "object"},
                        "logprobs": {},
                        "finish_reason": _nullable(STRING),
                    },
                },
            },
        },
    },
    "CompletionRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "prompt": {"anyOf": [STRING, {"type": "array"}]},
            "max_tokens": {"type": "integer", "minimum": 0},
            "stream": BOOLEAN,
            "stream_options": _ref("StreamOptions"),
            "temperature": NUMBER,
        },
    },
    "Completion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": STRING,
            "object": {"const": "text_completion"},
            "created": INTEGER,
            "model": STRING,
            "usage": _ref("Usage"),
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text", "index", "finish_reason"],
                    "properties": {
                        "text": STRING,
                        "index": INTEGER,
                        "logprobs": {},
                        "finish_reason": _nullable(STRING),
                    },
                },
            },
        },
    },
    "EmbeddingRequest": {
        "type": "object",
        "required": ["model", "input"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "input": {"anyOf": [STRING, {"type": "array", "minItems": 1, "items": {"anyOf": [
                STRING, INTEGER, {"type": "array", "items": INTEGER}]}}]},
            "encoding_format": {"enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1, "maximum": 65536},
            "user": STRING,
        },
    },
    "EmbeddingList": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"const": "list"},
            "model": STRING,
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["object", "index", "embedding"],
                    "properties": {
                        "object": {"const": "embedding"},
                        "index": INTEGER,
                        "embedding": {
                            "anyOf": [{"type": "array", "items": NUMBER}, STRING],
                            "description": "Floats, or base64 of little-endian float32 "
                            "when encoding_format is base64.",
                        },
                    },
                },
            },
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "total_tokens"],
                "properties": {"prompt_tokens": INTEGER, "total_tokens": INTEGER},
            },
        },
    },
    "Model": {
        "description": "A model the key may use. Carries the OpenAI fields (object, created, owned_by) and "
        "the Anthropic ones (type, display_name, created_at), so that both SDKs can list models.",
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": STRING,
            "object": {"const": "model"},
            "created": INTEGER,
            "owned_by": STRING,
            "type": {"const": "model"},
            "display_name": STRING,
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref("Model")},
            "has_more": {"const": False},
            "first_id": _nullable(STRING),
            "last_id": _nullable(STRING),
        },
    },
    "AnthropicMessagesRequest": {
        "type": "object",
        "required": ["model", "messages", "max_tokens"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "system": {"anyOf": [STRING, TEXT_PARTS]},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"enum": ["user", "assistant"]},
                        "content": {"anyOf": [STRING, {"type": "array", "items": {"type": "object"}}]},
                    },
                },
            },
            "stream": BOOLEAN,
            "temperature": NUMBER,
            "stop_sequences": {"type": "array", "items": STRING},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"type": "object"},
        },
    },
    "AnthropicMessage": {
        "type": "object",
        "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
        "properties": {
            "id": STRING,
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": STRING,
            "content": {"type": "array", "items": _ref("AnthropicContentBlock")},
            "stop_reason": _nullable(STRING),
            "stop_sequence": _nullable(STRING),
            "usage": _ref("AnthropicUsage"),
        },
    },
    "AnthropicUsage": {"type": "object", "required": ["input_tokens", "output_tokens"], "properties": ANTHROPIC_USAGE},
    "AnthropicContentBlock": {
        "description": "A text or tool_use block; other block types (e.g. thinking) come only from Anthropic "
        "upstreams and are passed on as they are.",
        "anyOf": [
            _object("text", text=STRING),
            _object("tool_use", id=STRING, name=STRING, input={"type": "object"}),
            _other_type("text", "tool_use"),
        ],
    },
    "AnthropicStreamEvent": {
        "description": "The `data:` of one server-sent event of a streamed message; the `event:` line names "
        "the same type. Order: message_start, then per content block content_block_start, "
        "content_block_delta…, content_block_stop, then message_delta and message_stop; ping at any time; "
        "error ends a stream that failed after it started.",
        "oneOf": [
            _object("message_start", message=_ref("AnthropicMessage")),
            _object("content_block_start", index=INTEGER, content_block=_ref("AnthropicContentBlock")),
            _object("content_block_delta", index=INTEGER, delta={"anyOf": [
                _object("text_delta", text=STRING),
                _object("input_json_delta", partial_json=STRING),
                _other_type("text_delta", "input_json_delta"),
            ]}),
            _object("content_block_stop", index=INTEGER),
            _object("message_delta", delta={
                "type": "object",
                "required": ["stop_reason"],
                "properties": {"stop_reason": _nullable(STRING), "stop_sequence": _nullable(STRING)},
            }, usage={"type": "object", "required": ["output_tokens"], "properties": ANTHROPIC_USAGE}),
            _object("message_stop"),
            _object("ping"),
            _ref("AnthropicError"),
        ],
    },
}

RESPONSES_USAGE = {
    "type": "object",
    "required": ["input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details", "total_tokens"],
    "properties": {
        "input_tokens": INTEGER,
        "input_tokens_details": {"type": "object", "properties": {"cached_tokens": INTEGER}},
        "output_tokens": INTEGER,
        "output_tokens_details": {"type": "object", "properties": {"reasoning_tokens": INTEGER}},
        "total_tokens": INTEGER,
    },
}
RESPONSES_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": STRING, "message": STRING},
}
_ITEM_AT = {"item_id": STRING, "output_index": INTEGER}
_PART_AT = {**_ITEM_AT, "content_index": INTEGER}


def _event(type_name: str, **required: dict) -> dict:
    """A Responses stream event: its type, its sequence_number and the given properties."""
    return _object(type_name, sequence_number=INTEGER, **required)


SCHEMAS.update({
    "ResponsesRequest": {
        "type": "object",
        "required": ["model", "input"],
        "additionalProperties": True,
        "description": "Translated to a chat completion for every upstream. Tools other than functions "
        "(web_search, file_search, code_interpreter, computer_use, image_generation, mcp, namespace groups …) "
        "are left out of what goes upstream and named in the x-pforte-dropped-tools header. store, include, "
        "metadata, prompt_cache_key, client_metadata and reasoning.summary are accepted. For a key that keeps "
        "conversations the response is stored unless store is false, and previous_response_id continues a "
        "stored response (404 when it is unknown, another key's or past retention); for any other key "
        "previous_response_id is refused (400 conversations_not_kept) and store is ignored.",
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "instructions": STRING,
            "input": {"anyOf": [STRING, {"type": "array", "items": _ref("ResponsesInputItem")}]},
            "tools": {"type": "array", "items": {"type": "object", "required": ["type"]}},
            "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
            "parallel_tool_calls": BOOLEAN,
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": NUMBER,
            "top_p": NUMBER,
            "text": {"type": "object", "properties": {"format": {"type": "object", "required": ["type"], "properties": {
                "type": {"enum": ["text", "json_object", "json_schema"]}, "name": STRING,
                "schema": {"type": "object"}, "strict": BOOLEAN}}}},
            "reasoning": {"type": "object", "properties": {"effort": STRING, "summary": STRING}},
            "stream": BOOLEAN,
            "store": BOOLEAN,
            "include": {"type": "array", "items": STRING},
            "metadata": {"type": "object"},
            "user": STRING,
        },
    },
    "ResponseDeleted": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {"id": STRING, "object": {"const": "response"}, "deleted": {"const": True}},
    },
    "ResponseItemList": {
        "type": "object",
        "required": ["object", "data", "first_id", "last_id", "has_more"],
        "properties": {"object": {"const": "list"},
                       "data": {"type": "array", "items": {"type": "object", "required": ["id", "type"]}},
                       "first_id": {"type": ["string", "null"]}, "last_id": {"type": ["string", "null"]},
                       "has_more": BOOLEAN},
    },
    "ResponsesInputItem": {
        "description": "A message (roles user, system, developer, assistant; parts input_text, input_image, "
        "input_file, output_text), a function_call, a function_call_output, or a reasoning item (left out "
        "for chat upstreams).",
        "anyOf": [
            {"type": "object", "required": ["role", "content"], "properties": {
                "type": {"const": "message"},
                "role": {"enum": ["user", "system", "developer", "assistant"]},
                "content": {"anyOf": [STRING, {"type": "array", "items": {"type": "object"}}]}}},
            _object("function_call", call_id=STRING, name=STRING, arguments=STRING),
            _object("function_call_output", call_id=STRING,
                    output={"anyOf": [STRING, {"type": "array", "items": {"type": "object"}}]}),
            _object("reasoning"),
        ],
    },
    "ResponsesOutputItem": {
        "anyOf": [
            _object("message", id=STRING, role={"const": "assistant"}, status=STRING,
                    content={"type": "array", "items": {"anyOf": [
                        _object("output_text", text=STRING, annotations={"type": "array"}),
                        _object("refusal", refusal=STRING)]}}),
            _object("function_call", id=STRING, call_id=STRING, name=STRING, arguments=STRING, status=STRING),
        ],
    },
    "Response": {
        "type": "object",
        "required": ["id", "object", "created_at", "status", "model", "output", "usage", "error",
                     "incomplete_details", "tools", "tool_choice", "parallel_tool_calls", "metadata"],
        "properties": {
            "id": STRING,
            "object": {"const": "response"},
            "created_at": INTEGER,
            "status": {"enum": ["completed", "incomplete", "failed", "in_progress"]},
            "model": STRING,
            "output": {"type": "array", "items": _ref("ResponsesOutputItem")},
            "usage": _nullable(RESPONSES_USAGE),
            "error": _nullable(RESPONSES_ERROR),
            "incomplete_details": _nullable({"type": "object", "properties": {
                "reason": {"enum": ["max_output_tokens", "content_filter"]}}}),
            "instructions": _nullable(STRING),
            "max_output_tokens": _nullable(INTEGER),
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"anyOf": [STRING, {"type": "object"}]},
            "parallel_tool_calls": BOOLEAN,
            "metadata": {"type": "object"},
        },
    },
    "ResponseStreamEvent": {
        "description": "The `data:` of one server-sent event of a streamed response; the `event:` line names "
        "the same type, and sequence_number rises by one from 0. Order: response.created, "
        "response.in_progress, then per message response.output_item.added, response.content_part.added, "
        "response.output_text.delta…, response.output_text.done, response.content_part.done, "
        "response.output_item.done, and per function call response.output_item.added, "
        "response.function_call_arguments.delta…, response.function_call_arguments.done, "
        "response.output_item.done; last response.completed or response.incomplete with the whole response "
        "and its usage. A failure after the start ends the stream with response.failed, the error inside.",
        "oneOf": [
            _event("response.created", response=_ref("Response")),
            _event("response.in_progress", response=_ref("Response")),
            _event("response.output_item.added", output_index=INTEGER, item=_ref("ResponsesOutputItem")),
            _event("response.output_item.done", output_index=INTEGER, item=_ref("ResponsesOutputItem")),
            _event("response.content_part.added", **_PART_AT, part={"type": "object"}),
            _event("response.content_part.done", **_PART_AT, part={"type": "object"}),
            _event("response.output_text.delta", **_PART_AT, delta=STRING),
            _event("response.output_text.done", **_PART_AT, text=STRING),
            _event("response.refusal.delta", **_PART_AT, delta=STRING),
            _event("response.refusal.done", **_PART_AT, refusal=STRING),
            _event("response.function_call_arguments.delta", **_ITEM_AT, delta=STRING),
            _event("response.function_call_arguments.done", **_ITEM_AT, name=STRING, arguments=STRING),
            _event("response.completed", response=_ref("Response")),
            _event("response.incomplete", response=_ref("Response")),
            _event("response.failed", response=_ref("Response")),
        ],
    },
})

HEADERS = {
    "RequestId": {"description": "Identifies the request in the gateway's log.", "schema": STRING},
    "RateLimitLimit": {
        "description": "Requests allowed in the tightest window of the key's limits (only when "
        "the key has request limits).",
        "schema": STRING,
    },
    "RateLimitRemaining": {"description": "Requests left in that window.", "schema": STRING},
    "RateLimitReset": {"description": "Time until the window resets, e.g. `7s`.", "schema": STRING},
    "RetryAfter": {"description": "Seconds to wait before retrying (at most 60).", "schema": INTEGER},
    "ShouldRetry": {"description": "`false`: retrying will not help.", "schema": {"const": "false"}},
    "DroppedTools": {
        "description": "The tools of the request that the upstream cannot run and that were left out, comma "
        "separated: their type, and `type:name` when they have a name (e.g. `web_search, namespace:mcp`).",
        "schema": STRING,
    },
}

_REQUEST_ID = {"x-request-id": {"$ref": "#/components/headers/RequestId"}}
_ANTHROPIC_REQUEST_ID = {**_REQUEST_ID, "request-id": {"$ref": "#/components/headers/RequestId"}}
_OK_HEADERS = {
    **_REQUEST_ID,
    "x-ratelimit-limit-requests": {"$ref": "#/components/headers/RateLimitLimit"},
    "x-ratelimit-remaining-requests": {"$ref": "#/components/headers/RateLimitRemaining"},
    "x-ratelimit-reset-requests": {"$ref": "#/components/headers/RateLimitReset"},
}


def _error_responses(anthropic: bool = False, statuses=None) -> dict:
    """One response per status of the error table (401, 402, … all in the error shape)."""
    schema = _ref("AnthropicError" if anthropic else "Error")
    responses: dict[str, dict] = {}
    for status, error_type, code, when in ERRORS:
        if statuses is not None and status not in statuses:
            continue
        entry = responses.setdefault(
            str(status),
            {
                "description": "",
                "headers": dict(_ANTHROPIC_REQUEST_ID if anthropic else _REQUEST_ID),
                "content": {"application/json": {"schema": schema}},
            },
        )
        entry["description"] += f"{'; ' if entry['description'] else ''}{code} ({error_type}): {when}"
        if status == 429:
            entry["headers"]["retry-after"] = {"$ref": "#/components/headers/RetryAfter"}
        if status in (402, 429, 502):
            entry["headers"]["x-should-retry"] = {"$ref": "#/components/headers/ShouldRetry"}
    return responses


def _stored_operation(summary: str, operation_id: str, schema: dict, query: tuple = ()) -> dict:
    """GET or DELETE of a response this key stored (keys that keep conversations only)."""
    parameters = [{"name": "response_id", "in": "path", "required": True, "schema": STRING}]
    parameters += [{"name": name, "in": "query", "required": False, "schema": value} for name, value in query]
    return {
        "summary": summary,
        "operationId": operation_id,
        "description": "Only the key's own responses, stored while it keeps conversations: another key's, an "
        "unknown or an expired one is 404; a key that keeps no conversations gets 400 "
        "conversations_not_kept. Reading needs a key scope that allows GET, deleting one that allows the "
        "Responses API.",
        "parameters": parameters,
        "responses": {
            "200": {"description": "Success.", "headers": _OK_HEADERS,
                    "content": {"application/json": {"schema": schema}}},
            **_error_responses(statuses={400, 401, 403, 404, 429, 500}),
        },
    }


def _operation(
    summary: str,
    operation_id: str,
    request_schema: str | None,
    response_schema: str,
    stream_schema: str | None = None,
    anthropic: bool = False,
    description: str = "",
    parameters: list | None = None,
    named_events: bool = False,
    extra_headers: dict | None = None,
) -> dict:
    content = {"application/json": {"schema": _ref(response_schema)}}
    if stream_schema:
        content["text/event-stream"] = {  # OpenAPI 3.1: the schema describes one event of the stream
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {"event": STRING, "data": STRING, "id": STRING, "retry": INTEGER},
                "description": f"Server-sent events; each `data:` line holds a "
                f"{stream_schema} (see components/schemas)"
                + (", the `event:` line before it names its type." if anthropic or named_events else ".")
                + (" The last event of a stream is `data: [DONE]`." if not (anthropic or named_events) else ""),
            },
        }
    headers = {**_OK_HEADERS, **_ANTHROPIC_REQUEST_ID} if anthropic else _OK_HEADERS
    headers = {**headers, **(extra_headers or {})}
    operation: dict = {
        "summary": summary,
        "operationId": operation_id,
        "responses": {
            "200": {"description": "Success.", "headers": headers, "content": content},
            **_error_responses(anthropic),
        },
    }
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if request_schema:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(request_schema)}},
        }
    return operation


def openapi_document(server_url: str) -> dict:
    """The whole OpenAPI 3.1 document; server_url is the client base URL (…/v1)."""
    model_parameter = {
        "name": "model",
        "in": "path",
        "required": True,
        "description": "The model id; may contain `/` and `:`.",
        "schema": STRING,
    }
    list_errors = _error_responses(statuses={400, 401, 403, 404, 429, 500})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pforte client API",
            "version": VERSION,
            "description": "OpenAI-compatible (and Anthropic-compatible) API of a Pforte gateway. Send the "
            "key as `Authorization: Bearer <key>`; `x-api-key` and `api-key` work too. Every error "
            "is JSON with `error.message`, `error.type`, `error.param` and `error.code`.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}, {"azureApiKeyHeader": []}],
        "paths": {
            "/chat/completions": {
                "post": _operation(
                    "Create a chat completion",
                    "createChatCompletion",
                    "ChatCompletionRequest",
                    "ChatCompletion",
                    stream_schema="ChatCompletionChunk",
                    description="Streams server-sent events when `stream` is true; ask for token counts with "
                    "`stream_options.include_usage`.",
                )
            },
            "/completions": {
                "post": _operation(
                    "Create a (legacy) text completion",
                    "createCompletion",
                    "CompletionRequest",
                    "Completion",
                    stream_schema="Completion",
                )
            },
            "/embeddings": {
                "post": _operation(
                    "Create embeddings", "createEmbedding", "EmbeddingRequest", "EmbeddingList"
                )
            },
            "/messages": {
                "post": _operation(
                    "Create a message (Anthropic Messages API)",
                    "createMessage",
                    "AnthropicMessagesRequest",
                    "AnthropicMessage",
                    stream_schema="AnthropicStreamEvent",
                    anthropic=True,
                    description="For the Anthropic SDK: its base URL is the gateway's address without `/v1`. "
                    "Errors use the Anthropic shape.",
                )
            },
            "/responses": {
                "post": _operation(
                    "Create a response (OpenAI Responses API)",
                    "createResponse",
                    "ResponsesRequest",
                    "Response",
                    stream_schema="ResponseStreamEvent",
                    named_events=True,
                    extra_headers={"x-pforte-dropped-tools": {"$ref": "#/components/headers/DroppedTools"}},
                    description="Works with every model: the request is translated to a chat completion and "
                    "the answer back, or, when the model's connection says its upstream offers the Responses "
                    "API, forwarded to it unchanged (model, output cap and `store: false` set by Pforte) with "
                    "its answer and events passed on as they are. Streams named server-sent events when "
                    "`stream` is true. Tools the "
                    "upstream cannot run are left out and named in `x-pforte-dropped-tools`. Errors use the "
                    "OpenAI shape and the codes of chat completions.",
                )
            },
            "/responses/{response_id}": {
                "get": _stored_operation("Get a stored response", "getResponse", _ref("Response")),
                "delete": _stored_operation("Delete a stored response", "deleteResponse",
                                            _ref("ResponseDeleted")),
            },
            "/responses/{response_id}/input_items": {
                "get": _stored_operation(
                    "List a stored response's input items", "listInputItems", _ref("ResponseItemList"),
                    query=(("order", {"enum": ["asc", "desc"], "default": "desc"}),
                           ("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                           ("after", STRING))),
            },
            "/models": {
                "get": {
                    "summary": "List the models this key may use",
                    "operationId": "listModels",
                    "responses": {
                        "200": {
                            "description": "Success.",
                            "headers": _OK_HEADERS,
                            "content": {"application/json": {"schema": _ref("ModelList")}},
                        },
                        **list_errors,
                    },
                }
            },
            "/models/{model}": {
                "get": {
                    "summary": "Get one model",
                    "operationId": "retrieveModel",
                    "parameters": [model_parameter],
                    "responses": {
                        "200": {
                            "description": "Success.",
                            "headers": _OK_HEADERS,
                            "content": {"application/json": {"schema": _ref("Model")}},
                        },
                        **list_errors,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenApiDocument",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer <key>",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "azureApiKeyHeader": {"type": "apiKey", "in": "header", "name": "api-key"},
            },
            "schemas": SCHEMAS,
            "headers": HEADERS,
        },
    }
