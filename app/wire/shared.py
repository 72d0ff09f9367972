"""What both directions of the OpenAI Chat Completions / Anthropic Messages conversion share.

The finish/stop reason table, the error raised for requests that cannot be expressed in the other
format, ids, the text of simple content, and Anthropic's error shape. Pure functions over plain dicts.
"""
from __future__ import annotations

import re
import secrets

# finish_reason (OpenAI) ⇄ stop_reason (Anthropic).
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# Anthropic error types by HTTP status (docs.claude.com/en/api/errors; 402 is Anthropic's billing_error).
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class TranslationError(ValueError):
    """The request cannot be expressed in the target format; answered as 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def anthropic_tool_id(value: str | None) -> str:
    """A tool call id Anthropic accepts (^[a-zA-Z0-9_-]+$); the same input always gives the same id."""
    if not value:
        return new_tool_use_id()
    return _TOOL_ID_UNSAFE.sub("_", value)


def anthropic_message_id(openai_id: str | None) -> str:
    if not openai_id:
        return new_message_id()
    return "msg_" + _TOOL_ID_UNSAFE.sub("_", openai_id.removeprefix("chatcmpl-"))


def text_of(content, where: str) -> str:
    """The text of a string or an array of text parts (system, developer and tool messages)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise TranslationError(f"{where}: only text parts are supported here.", "messages")
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        return "\n".join(texts)
    raise TranslationError(f"{where}: content must be a string or an array of parts.", "messages")


def _openai_usage(input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int) -> dict:
    """OpenAI usage with both details objects (clients expect both)."""
    prompt = input_tokens + cache_read + cache_creation
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output_tokens,
        "total_tokens": prompt + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def openai_usage_from_anthropic(usage: dict | None) -> dict:
    """Anthropic usage → OpenAI usage; prompt_tokens counts cached input (input_tokens does not)."""
    usage = usage or {}
    return _openai_usage(
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(usage.get("cache_read_input_tokens") or 0),
        int(usage.get("cache_creation_input_tokens") or 0),
    )


def anthropic_usage_from_openai(usage: dict | None) -> dict:
    """OpenAI usage → Anthropic usage; cached prompt tokens move to cache_read_input_tokens."""
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def anthropic_error_type(status: int) -> str:
    if status in ANTHROPIC_ERROR_TYPES:
        return ANTHROPIC_ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(status: int, message: str, request_id: str | None = None) -> dict:
    """Anthropic's error shape, typed by status: {"type":"error","error":{"type","message"},"request_id"}."""
    body: dict = {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body
