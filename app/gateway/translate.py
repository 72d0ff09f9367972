"""OpenAI Chat Completions ⇄ Anthropic Messages, both directions, plain and streamed (compat.md §6).

Pure functions over plain dicts: no Flask, no I/O. Requests that cannot be expressed in the other
format raise TranslationError (the gateway answers 400 invalid_request_error). Stream converters take
an iterator of parsed events or chunks and yield the other format's events or chunks as they come.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator

DEFAULT_MAX_TOKENS = 4096
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

# finish_reason (OpenAI) ⇄ stop_reason (Anthropic); the table in compat.md §6.
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

_DATA_URI = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)?(;[^;,]*)*?;base64,(?P<data>.*)$", re.S)
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class TranslationError(ValueError):
    """The request cannot be expressed in the target format; answered as 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


class UpstreamStreamError(Exception):
    """An Anthropic stream reported an `error` event, or ended before `message_stop`."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


# ---------------------------------------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------------------------------------

def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def anthropic_tool_id(value: str | None) -> str:
    """A tool call id Anthropic accepts (^[a-zA-Z0-9_-]+$); the same input always gives the same id."""
    if not value:
        return new_tool_use_id()
    return _TOOL_ID_UNSAFE.sub("_", value)


def _text_of(content, where: str) -> str:
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
    """OpenAI usage with both details objects (compat.md §1: always send them)."""
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


def _number(value, field: str, kind=float):
    """A numeric request field, or a 400 naming the field."""
    if isinstance(value, bool):
        raise TranslationError(f"{field} must be a number.", field)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise TranslationError(f"{field} must be a number.", field) from None


def _parse_arguments(arguments) -> dict:
    """Tool call arguments (a JSON string) → the object Anthropic wants; invalid JSON is a 400."""
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        raise TranslationError("tool_calls[].function.arguments must be a JSON object string.",
                               "messages") from None
    if not isinstance(value, dict):
        raise TranslationError("tool_calls[].function.arguments must be a JSON object string.", "messages")
    return value


def _arguments_from_response(arguments) -> dict:
    """Arguments produced by a model (not by the client): invalid JSON becomes {} rather than an error."""
    try:
        return _parse_arguments(arguments)
    except TranslationError:
        return {}


# ---------------------------------------------------------------------------------------------------------
# OpenAI request → Anthropic request
# ---------------------------------------------------------------------------------------------------------

def _image_block(image_url) -> dict:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url.url is required.", "messages")
    if url.startswith("data:"):
        match = _DATA_URI.match(url)
        if not match or not match.group("media"):
            raise TranslationError("image_url: a data: URI must be base64 with a media type.", "messages")
        return {"type": "image", "source": {"type": "base64", "media_type": match.group("media"),
                                            "data": match.group("data")}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document_block(file: dict) -> dict:
    data = (file or {}).get("file_data")
    if not isinstance(data, str):
        raise TranslationError("file parts need file_data (a data: URI); file_id is not supported here.",
                               "messages")
    match = _DATA_URI.match(data)
    if not match:
        raise TranslationError("file.file_data must be a base64 data: URI.", "messages")
    block = {"type": "document", "source": {"type": "base64",
                                            "media_type": match.group("media") or "application/pdf",
                                            "data": match.group("data")}}
    if file.get("filename"):
        block["title"] = str(file["filename"])
    return block


def _user_blocks(content) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError("user message content must be a string or an array of parts.", "messages")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url")))
        elif kind == "file":
            blocks.append(_document_block(part.get("file") or {}))
        elif kind == "input_audio":
            raise TranslationError("Audio input is not supported by this model.", "messages")
        else:
            raise TranslationError(f"Unsupported content part type: {kind!r}.", "messages")
    return blocks


def _assistant_blocks(message: dict) -> list[dict]:
    blocks = []
    text = _text_of(message.get("content"), "assistant message")
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = (call or {}).get("function") or {}
        if not function.get("name"):
            raise TranslationError("tool_calls[].function.name is required.", "messages")
        blocks.append({"type": "tool_use", "id": anthropic_tool_id(call.get("id")), "name": function["name"],
                       "input": _parse_arguments(function.get("arguments"))})
    return blocks


def _tool_result_block(message: dict) -> dict:
    if not message.get("tool_call_id"):
        raise TranslationError("tool messages need tool_call_id.", "messages")
    return {"type": "tool_result", "tool_use_id": anthropic_tool_id(message["tool_call_id"]),
            "content": _text_of(message.get("content"), "tool message")}


def _append_turn(turns: list[dict], role: str, blocks: list[dict]) -> None:
    """Append blocks as a turn; consecutive turns of one role merge (Anthropic wants them alternating)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _compact(turns: list[dict]) -> list[dict]:
    """A turn that is a single text block is sent as a plain string, as clients usually do."""
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return turns


def _anthropic_tools(tools) -> list[dict]:
    result = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise TranslationError("Only function tools are supported.", "tools")
        function = tool.get("function") or {}
        if not function.get("name"):
            raise TranslationError("tools[].function.name is required.", "tools")
        entry = {"name": function["name"],
                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            entry["description"] = function["description"]
        result.append(entry)
    return result


def _anthropic_tool_choice(choice, parallel) -> dict | None:
    if choice is None:
        result = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        result = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise TranslationError("tool_choice must be none, auto, required or a function.", "tool_choice")
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


def _format_instruction(response_format) -> str | None:
    """Anthropic has no JSON mode: json_object / json_schema become an instruction in the system prompt."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema is None:
            return JSON_OBJECT_INSTRUCTION
        return (f"{JSON_OBJECT_INSTRUCTION} It must conform to this JSON schema:\n"
                f"{json.dumps(schema, ensure_ascii=False)}")
    return None


def openai_request_to_anthropic(body: dict, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict:
    """An OpenAI chat request → an Anthropic Messages request (compat.md §6 translation table)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages must be an array.", "messages")
    if body.get("functions") or body.get("function_call"):
        raise TranslationError("The legacy functions/function_call fields are not supported; use tools.",
                               "functions")
    if (body.get("n") or 1) != 1:
        raise TranslationError("n > 1 is not supported by this model.", "n")

    system_parts: list[str] = []
    turns: list[dict] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = _text_of(message.get("content"), f"{role} message")
            if text:
                system_parts.append(text)
        elif role == "user":
            _append_turn(turns, "user", _user_blocks(message.get("content")))
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_blocks(message))
        elif role == "tool":
            # Tool results open the user turn: results go first, any user text of the same turn follows.
            _append_turn(turns, "user", [_tool_result_block(message)])
        else:
            raise TranslationError(f"Unsupported message role: {role!r}.", "messages")

    instruction = _format_instruction(body.get("response_format"))
    if instruction:
        system_parts.append(instruction)

    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    result: dict = {"model": body.get("model"), "max_tokens": _number(max_tokens, "max_tokens", int),
                    "messages": _compact(turns)}
    if system_parts:
        result["system"] = "\n\n".join(system_parts)
    if body.get("temperature") is not None:
        result["temperature"] = min(max(_number(body["temperature"], "temperature"), 0.0), 1.0)
    if body.get("top_p") is not None:
        result["top_p"] = _number(body["top_p"], "top_p")
    if isinstance(body.get("top_k"), int):
        result["top_k"] = body["top_k"]
    stop = body.get("stop")
    if stop:
        result["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        result["tools"] = _anthropic_tools(body["tools"])
    choice = _anthropic_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and body.get("tools"):
        result["tool_choice"] = choice
    user = body.get("safety_identifier") or body.get("user")
    if user:
        result["metadata"] = {"user_id": str(user)}
    if body.get("stream"):
        result["stream"] = True
    return result


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
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise TranslationError("max_tokens: Field required (an integer ≥ 1)", "max_tokens")
    if not isinstance(body.get("messages"), list):
        raise TranslationError("messages: Field required (an array)", "messages")
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise TranslationError("messages: each message needs role user or assistant.", "messages")


def anthropic_request_to_openai(body: dict) -> dict:
    """An Anthropic Messages request → an OpenAI chat request (validates the required fields first)."""
    validate_anthropic_request(body)
    messages: list[dict] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system, "system")})
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


# ---------------------------------------------------------------------------------------------------------
# OpenAI response → Anthropic response
# ---------------------------------------------------------------------------------------------------------

def anthropic_message_id(openai_id: str | None) -> str:
    if not openai_id:
        return new_message_id()
    return "msg_" + _TOOL_ID_UNSAFE.sub("_", openai_id.removeprefix("chatcmpl-"))


def openai_response_to_anthropic(response: dict, *, model: str | None = None) -> dict:
    """An OpenAI chat.completion → an Anthropic message (the first choice)."""
    choices = response.get("choices") or [{}]
    choice = choices[0] or {}
    message = choice.get("message") or {}
    content: list[dict] = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(str(part.get("text") or "") for part in text if isinstance(part, dict))
    if text:
        content.append({"type": "text", "text": text})
    elif message.get("refusal"):
        content.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": anthropic_tool_id(call.get("id")),
                        "name": function.get("name", ""),
                        "input": _arguments_from_response(function.get("arguments"))})
    finish = choice.get("finish_reason") or "stop"
    if message.get("tool_calls") and finish != "length":
        finish = "tool_calls"  # some servers say "stop" next to tool calls
    stop_reason = FINISH_TO_STOP.get(finish, "end_turn")
    return {
        "id": anthropic_message_id(response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model or response.get("model"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage_from_openai(response.get("usage")),
    }


# ---------------------------------------------------------------------------------------------------------
# OpenAI chunks → Anthropic stream events
# ---------------------------------------------------------------------------------------------------------

class _AnthropicEventWriter:
    """Keeps the block bookkeeping of one Anthropic stream: indexes 0,1,2… opened and closed in order."""

    def __init__(self):
        self.next_index = 0
        self.open_index: int | None = None
        self.open_kind: str | None = None  # "text" or "tool"
        self.tool_blocks: dict = {}  # OpenAI tool call index (or id) → Anthropic block index
        self.last_tool_key = None

    def close(self) -> Iterator[dict]:
        if self.open_index is not None:
            yield {"type": "content_block_stop", "index": self.open_index}
            self.open_index, self.open_kind = None, None

    def open(self, kind, block: dict) -> Iterator[dict]:
        yield from self.close()
        self.open_index, self.open_kind = self.next_index, kind
        self.next_index += 1
        yield {"type": "content_block_start", "index": self.open_index, "content_block": block}

    def text(self, text: str) -> Iterator[dict]:
        if self.open_kind != "text":
            yield from self.open("text", {"type": "text", "text": ""})
        yield {"type": "content_block_delta", "index": self.open_index,
               "delta": {"type": "text_delta", "text": text}}

    def tool_call(self, call: dict) -> Iterator[dict]:
        key = call.get("index")
        if key is None:  # some servers omit index: a new id starts a new call, anything else continues one
            new_id = call.get("id") and ("id", call["id"]) not in self.tool_blocks
            key = ("id", call["id"]) if new_id else self.last_tool_key
        function = call.get("function") or {}
        if key not in self.tool_blocks:
            block = {"type": "tool_use", "id": anthropic_tool_id(call.get("id")),
                     "name": function.get("name") or "", "input": {}}
            yield from self.open("tool", block)
            self.tool_blocks[key] = self.open_index
        self.last_tool_key = key
        if function.get("arguments"):
            yield {"type": "content_block_delta", "index": self.tool_blocks[key],
                   "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}}


def _message_start(message_id: str | None, model: str, input_tokens: int) -> dict:
    return {"type": "message_start", "message": {
        "id": message_id or new_message_id(), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 0,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}


def openai_chunks_to_anthropic_events(chunks: Iterable[dict], *, model: str, message_id: str | None = None,
                                      input_tokens: int = 0) -> Iterator[dict]:
    """OpenAI chat.completion.chunk dicts → Anthropic stream events (each a dict with `type`).

    Order: message_start, content blocks (start / delta… / stop, indexes 0,1,2…), message_delta with the
    cumulative output_tokens, message_stop. message_start waits for the first upstream chunk, so that an
    upstream failing at once can still be answered with a plain error status. input_tokens is the
    estimate sent in message_start; the real figure from upstream usage follows in message_delta. Without
    upstream usage, output_tokens is estimated at four characters per token.
    """
    writer = _AnthropicEventWriter()
    finish: str | None = None
    usage: dict | None = None
    output_chars = 0
    started = False
    for chunk in chunks:
        if not started:
            started = True
            yield _message_start(message_id, model, input_tokens)
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                output_chars += len(text)
                yield from writer.text(text)
            for call in delta.get("tool_calls") or []:
                output_chars += len(((call or {}).get("function") or {}).get("arguments") or "")
                yield from writer.tool_call(call or {})
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    if not started:
        yield _message_start(message_id, model, input_tokens)
    yield from writer.close()
    if usage:
        final_usage = anthropic_usage_from_openai(usage)
    else:
        final_usage = {"input_tokens": input_tokens, "output_tokens": -(-output_chars // 4)}
    finish = finish or "stop"
    if writer.tool_blocks and finish != "length":
        finish = "tool_calls"
    stop_reason = FINISH_TO_STOP.get(finish, "end_turn")
    yield {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
           "usage": final_usage}
    yield {"type": "message_stop"}


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------

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
