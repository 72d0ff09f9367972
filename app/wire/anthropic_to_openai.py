"""Anthropic Messages → OpenAI Chat Completions: requests, responses and streams.

Requests go this way when an Anthropic client (/v1/messages) uses a model on a non-Anthropic
connection; responses and streams go this way when an OpenAI client uses a model on an Anthropic
connection. Requests that cannot be expressed as a chat request raise TranslationError; an Anthropic
stream that fails or ends early raises UpstreamStreamError. Pure functions over plain dicts.
"""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Iterator

from app.wire import field_types
from app.wire.shared import (
    STOP_TO_FINISH,
    TranslationError,
    new_completion_id,
    new_tool_use_id,
    openai_usage_from_anthropic,
    text_of,
)


class UpstreamStreamError(Exception):
    """An Anthropic stream reported an `error` event, or ended before `message_stop`."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


# ---------------------------------------------------------------------------------------------------------
# Anthropic response → OpenAI response
# ---------------------------------------------------------------------------------------------------------

def _openai_tool_call(block: dict) -> dict:
    return {"id": block.get("id") or new_tool_use_id(), "type": "function",
            "function": {"name": block.get("name", ""),
                         "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}}


def anthropic_response_to_openai(message: dict, *, model: str | None = None,
                                 created: int | None = None) -> dict:
    """An Anthropic message → an OpenAI chat.completion (thinking blocks are left out)."""
    texts, tool_calls = [], []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(_openai_tool_call(block))
    reply: dict = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None,
                   "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    finish = STOP_TO_FINISH.get(message.get("stop_reason") or "end_turn", "stop")
    return {
        "id": "chatcmpl-" + str(message.get("id") or secrets.token_hex(12)),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model or message.get("model"),
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage_from_anthropic(message.get("usage")),
        "system_fingerprint": None,
    }


# ---------------------------------------------------------------------------------------------------------
# Anthropic stream → OpenAI chunks
# ---------------------------------------------------------------------------------------------------------

def anthropic_stream_to_openai_chunks(events: Iterable[dict], *, model: str | None = None,
                                      include_usage: bool = True) -> Iterator[dict]:
    """Anthropic stream events (parsed `data` objects) → OpenAI chat.completion.chunk dicts.

    Tool calls are numbered 0,1,2… among tool calls only, not by Anthropic block index. `role` is sent
    once, on the first chunk. An `error` event, or an end without `message_stop`, raises UpstreamStreamError.
    """
    completion_id, created, chunk_model = new_completion_id(), int(time.time()), model
    usage: dict = {}
    tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index
    role_sent = False

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": chunk_model, "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def with_role(delta: dict) -> dict:
        nonlocal role_sent
        if not role_sent:
            role_sent = True
            return {"role": "assistant", **delta, "refusal": None}
        return delta

    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            completion_id = "chatcmpl-" + str(message.get("id") or secrets.token_hex(12))
            chunk_model = model or message.get("model")
            usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "text":
                yield chunk(with_role({"content": block.get("text") or ""}))
            elif block.get("type") == "tool_use":
                k = tool_index[event.get("index", 0)] = len(tool_index)
                call = {"index": k, "id": block.get("id") or new_tool_use_id(), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""}}
                yield chunk(with_role({"content": None, "tool_calls": [call]}))
                if block.get("input"):
                    arguments = json.dumps(block["input"], ensure_ascii=False)
                    yield chunk({"tool_calls": [{"index": k, "function": {"arguments": arguments}}]})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield chunk(with_role({"content": delta["text"]}))
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                k = tool_index.get(event.get("index", 0))
                if k is not None:
                    fragment = {"index": k, "function": {"arguments": delta["partial_json"]}}
                    yield chunk({"tool_calls": [fragment]})
        elif kind == "message_delta":
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason") or "end_turn"
            yield chunk(with_role({}), STOP_TO_FINISH.get(stop_reason, "stop"))
        elif kind == "message_stop":
            if include_usage:
                final = chunk({})
                final["choices"] = []
                final["usage"] = openai_usage_from_anthropic(usage)
                yield final
            return
        elif kind == "error":
            error = event.get("error") or {}
            raise UpstreamStreamError(error.get("type") or "api_error",
                                      error.get("message") or "Upstream error")
        # ping, content_block_stop, thinking deltas and unknown events carry nothing for OpenAI clients.
    raise UpstreamStreamError("api_error", "The upstream stream ended before message_stop.")


# ---------------------------------------------------------------------------------------------------------
# Anthropic request → OpenAI request
# ---------------------------------------------------------------------------------------------------------

def _openai_image_part(source: dict) -> dict:
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = source.get("url", "")
    else:
        raise TranslationError("image.source must be base64 or url.", "messages")
    return {"type": "image_url", "image_url": {"url": url}}


def _openai_document_part(block: dict) -> dict:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": source.get("data", "")}
    if source.get("type") == "base64":
        media = source.get("media_type", "application/pdf")
        return {"type": "file", "file": {"file_data": f"data:{media};base64,{source.get('data', '')}",
                                         "filename": block.get("title") or "document.pdf"}}
    raise TranslationError("document.source must be base64 or text for this model.", "messages")


def _tool_result_parts(block: dict) -> tuple[str, list[dict]]:
    """A tool_result's text (for the tool message) and any images (sent in the following user turn)."""
    content = block.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    texts, images = [], []
    for part in content:
        if part.get("type") == "text":
            texts.append(part.get("text") or "")
        elif part.get("type") == "image":
            images.append(_openai_image_part(part.get("source") or {}))
        else:
            raise TranslationError(f"Unsupported tool_result content type: {part.get('type')!r}.", "messages")
    return "\n".join(texts), images


def _openai_messages_for(role: str, content) -> list[dict]:
    """One Anthropic turn → one or more OpenAI messages (tool results become `tool` messages first)."""
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of content blocks.", "messages")
    tool_messages, parts, tool_calls = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image" and role == "user":
            parts.append(_openai_image_part(block.get("source") or {}))
        elif kind == "document" and role == "user":
            parts.append(_openai_document_part(block))
        elif kind == "tool_result" and role == "user":
            text, images = _tool_result_parts(block)
            tool_messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts.extend(images)
        elif kind == "tool_use" and role == "assistant":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            tool_calls.append({"id": block.get("id"), "type": "function",
                               "function": {"name": block.get("name"), "arguments": arguments}})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # signed reasoning of an Anthropic model means nothing to another model
        else:
            raise TranslationError(f"Unsupported content block type {kind!r} in a {role} message.",
                                   "messages")
    result = list(tool_messages)
    if role == "assistant":
        text = "".join(part["text"] for part in parts)
        message: dict = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if text or tool_calls:
            result.append(message)
    elif parts:
        only_text = all(part["type"] == "text" for part in parts)
        result.append({"role": "user",
                       "content": "\n".join(part["text"] for part in parts) if only_text else parts})
    return result


def _openai_tools(tools) -> list[dict]:
    result = []
    for tool in tools:
        if not isinstance(tool, dict) or not tool.get("name"):
            raise TranslationError("tools[].name is required.", "tools")
        if tool.get("type") not in (None, "custom"):
            raise TranslationError(f"Server tool {tool.get('type')!r} is not supported by this model.",
                                   "tools")
        function = {"name": tool["name"],
                    "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
        if tool.get("description"):
            function["description"] = tool["description"]
        result.append({"type": "function", "function": function})
    return result


def _openai_tool_choice(choice: dict) -> str | dict:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise TranslationError("tool_choice.type must be auto, any, tool (with name) or none.", "tool_choice")


def validate_anthropic_request(body) -> None:
    """The required fields of a Messages request (model, max_tokens, messages)."""
    if not isinstance(body, dict):
        raise TranslationError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise TranslationError("model: Field required", "model")
    max_tokens = field_types.integer(body.get("max_tokens"))
    if max_tokens is None or max_tokens < 1:
        raise TranslationError("max_tokens: Field required (an integer ≥ 1)", "max_tokens")
    body["max_tokens"] = max_tokens  # 16.0 → 16
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise TranslationError("messages: Field required (an array of at least one message)", "messages")
    field_types.check_types(body, field_types.MESSAGES, TranslationError)
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise TranslationError("messages: each message needs role user or assistant.", "messages")


def anthropic_request_to_openai(body: dict) -> dict:
    """An Anthropic Messages request → an OpenAI chat request (validates the required fields first)."""
    validate_anthropic_request(body)
    messages: list[dict] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": text_of(system, "system")})
    for message in body["messages"]:
        messages.extend(_openai_messages_for(message["role"], message.get("content")))

    result: dict = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            result[field] = body[field]
    if body.get("stop_sequences"):
        result["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        result["tools"] = _openai_tools(body["tools"])
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            result["tool_choice"] = _openai_tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                result["parallel_tool_calls"] = False
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        result["user"] = str(user_id)
    if body.get("stream"):
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    return result
