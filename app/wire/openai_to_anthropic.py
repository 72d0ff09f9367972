"""OpenAI Chat Completions → Anthropic Messages: requests, responses and streams.

Requests go this way when an OpenAI client uses a model on an Anthropic connection; responses and
streams go this way when an Anthropic client (/v1/messages) uses a model on any other connection.
Requests that cannot be expressed as a Messages request raise TranslationError. Pure functions over
plain dicts: no Flask, no I/O.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from app.wire.shared import (
    FINISH_TO_STOP,
    TranslationError,
    anthropic_message_id,
    anthropic_tool_id,
    anthropic_usage_from_openai,
    new_message_id,
    text_of,
)

DEFAULT_MAX_TOKENS = 4096
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

_DATA_URI = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)?(;[^;,]*)*?;base64,(?P<data>.*)$", re.S)


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
    text = text_of(message.get("content"), "assistant message")
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
            "content": text_of(message.get("content"), "tool message")}


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
    """An OpenAI chat request → an Anthropic Messages request."""
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
            text = text_of(message.get("content"), f"{role} message")
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
# OpenAI response → Anthropic response
# ---------------------------------------------------------------------------------------------------------

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
