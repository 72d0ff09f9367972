"""The Anthropic side of the fake upstream (tests/fake_upstream.py calls `register(server)`):
POST /v1/messages, plain and streamed with named events, tool use, errors in Anthropic's shape.

Answers are deterministic:
- with tools (and tool_choice not "none") and no tool_result in the last user turn: one `tool_use` of
  the first tool (or the one tool_choice names), its input built from the schema (strings "Bonn",
  numbers 1, booleans true, enums their first value);
- after a tool_result: "Tool said: <result text>";
- otherwise: "Echo: <last user text>".
Tokens are whitespace-separated words (input: system and all message text; output: the answer's words,
or one per four characters of tool input). `max_tokens` and `stop_sequences` are honoured.

The request must carry `x-api-key` (or `Authorization`) and `anthropic-version`, as the real API demands.
Failure modes use the fake upstream's directives (model suffix `+name=value` or `[fake name=value]` in
the last message), answered the Anthropic way:
  status=N            HTTP N with an Anthropic error body (529 → overloaded_error) before any byte
  retry_after=S       with status=429: a retry-after header
  first_byte_delay=S  wait S seconds before the status line
  chunk_delay=S       wait S seconds before every stream event
  die_after=N         send N stream events, then reset the connection (no message_stop)
  hang=1              never answer (stream: after the headers)
  hang_after=N        send N stream events, then fall silent
  error_after=N       send N stream events, then `event: error` (overloaded_error)
  malformed=1         invalid JSON (plain answer) or an invalid event (stream)
  cached=1            report 100 cache_read_input_tokens besides input_tokens
  talk=N              answer N words (not the echo), cut at max_tokens as always
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}
SLOW_MODES = ("status", "first_byte_delay", "hang")


def register(server) -> None:
    server.route("POST", "/v1/messages", messages)


def messages(request, server):
    """The route handler: a finished (status, headers, body) or a coroutine function for slow answers."""
    fake = sys.modules[type(server).__module__]  # the running fake_upstream, for its shared directives
    modes = fake.directives(request)
    body = request.json
    problem = check_request(request.headers, body)
    if problem:
        return problem
    message = build_message(body, modes)
    if body.get("stream") or any(mode in modes for mode in SLOW_MODES):
        return lambda exchange: answer_slowly(exchange, body, modes, message)
    if "malformed" in modes:
        return 200, {"Content-Type": "application/json"}, b'{"id": "msg_broken", "content": ['
    return json_reply(200, message)


def json_reply(status: int, value: dict, headers: dict | None = None):
    return status, {"Content-Type": "application/json", "request-id": "req_fake", **(headers or {})}, \
        json.dumps(value).encode()


def error_reply(status: int, message: str, headers: dict | None = None):
    error_type = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_reply(status, {"type": "error", "error": {"type": error_type, "message": message},
                               "request_id": "req_fake"}, headers)


def check_request(headers: dict[str, str], body: dict):
    """What the real API refuses before looking at the model (headers are lower-case here)."""
    if not (headers.get("x-api-key") or headers.get("authorization")):
        return error_reply(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return error_reply(400, "anthropic-version: header is required")
    if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
        return error_reply(400, "max_tokens and messages: Field required")
    return None


# --- the answer ----------------------------------------------------------------------------------

def text_of(content) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(text_of(block.get("content")))
    return " ".join(parts)


def input_tokens(body: dict) -> int:
    total = len(text_of(body.get("system")).split())
    return total + sum(len(text_of(message.get("content")).split()) for message in body["messages"])


def example_input(schema: dict) -> dict:
    result = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        if prop.get("enum"):
            result[name] = prop["enum"][0]
        elif prop.get("type") in ("integer", "number"):
            result[name] = 1
        elif prop.get("type") == "boolean":
            result[name] = True
        else:
            result[name] = "Bonn"
    return result


def has_tool_result(message: dict) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(block.get("type") == "tool_result" for block in content)


def chosen_tool(body: dict) -> dict | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    answered = bool(body["messages"]) and has_tool_result(body["messages"][-1])
    if not tools or choice.get("type") == "none" or answered:
        return None
    if choice.get("type") == "tool":
        return next((tool for tool in tools if tool.get("name") == choice.get("name")), tools[0])
    return tools[0]


def build_message(body: dict, modes: dict) -> dict:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    usage = {"input_tokens": input_tokens(body), "output_tokens": 0, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 100 if "cached" in modes else 0}
    message = {"id": "msg_fake" + digest, "type": "message", "role": "assistant", "model": body.get("model"),
               "content": [], "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
    tool = chosen_tool(body)
    if tool is not None:
        tool_input = example_input(tool.get("input_schema") or {})
        message["content"] = [{"type": "tool_use", "id": "toolu_fake01", "name": tool["name"],
                               "input": tool_input}]
        message["stop_reason"] = "tool_use"
        usage["output_tokens"] = max(1, len(json.dumps(tool_input)) // 4)
        return message
    last = body["messages"][-1] if body["messages"] else {}
    lead = ["Tool", "said:"] if has_tool_result(last) else ["Echo:"]
    words = lead + text_of(last.get("content")).split()
    if "talk" in modes:
        words = ["word"] * int(modes["talk"])
    for stop in body.get("stop_sequences") or ():
        if stop in words:
            words = words[:words.index(stop)]
            message["stop_reason"], message["stop_sequence"] = "stop_sequence", stop
            break
    if len(words) > body["max_tokens"]:
        words = words[:body["max_tokens"]]
        message["stop_reason"] = "max_tokens"
    message["content"] = [{"type": "text", "text": " ".join(words)}]
    usage["output_tokens"] = len(words)
    return message


# --- the stream ----------------------------------------------------------------------------------

def sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def message_events(message: dict) -> Iterator[dict]:
    """The event sequence the real API sends for a finished message."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield {"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}}
            for position, word in enumerate(block["text"].split(" ")):
                delta = {"type": "text_delta", "text": word if position == 0 else " " + word}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        else:
            yield {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}
            raw = json.dumps(block["input"])
            for piece in ("", raw[: len(raw) // 2], raw[len(raw) // 2:]):
                yield {"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": piece}}
        yield {"type": "content_block_stop", "index": index}
    yield {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                              "stop_sequence": message["stop_sequence"]},
           "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield {"type": "message_stop"}


async def answer_slowly(exchange, body: dict, modes: dict, message: dict) -> None:
    stats = exchange.stats
    if not await exchange.sleep(float(modes.get("first_byte_delay", 0))):
        stats.closed_by_client += 1
        return
    if "hang" in modes and not body.get("stream"):
        await exchange.hold()
        stats.closed_by_client += 1
        return
    if "status" in modes:
        headers = {"retry-after": modes["retry_after"]} if "retry_after" in modes else None
        exchange.send(error_reply(int(modes["status"]), f"fake upstream failure {modes['status']}", headers))
        return
    if not body.get("stream"):
        exchange.send(json_reply(200, message))
        return
    await send_stream(exchange, list(message_events(message)), modes)


async def send_stream(exchange, events: list[dict], modes: dict) -> None:
    stats = exchange.stats
    limits = {name: int(modes[name]) for name in ("die_after", "hang_after", "error_after") if name in modes}
    exchange.start_stream(headers={"request-id": "req_fake"})
    stats.streams_started += 1
    for index, event in enumerate(events):
        if "hang" in modes or index == limits.get("hang_after"):
            await exchange.hold()
            stats.closed_by_client += 1
            return
        if index == limits.get("die_after"):
            exchange.abort()
            return
        if index == limits.get("error_after"):
            error = {"type": "overloaded_error", "message": "Overloaded"}
            exchange.chunk(sse({"type": "error", "error": error}))
            exchange.end_stream()
            return
        if not await exchange.sleep(float(modes.get("chunk_delay", 0))):
            stats.closed_by_client += 1
            return
        data = sse(event)
        if "malformed" in modes and event["type"] == "content_block_delta":
            data = b"event: content_block_delta\ndata: {not json\n\n"
        exchange.chunk(data)
    exchange.end_stream()
    stats.streams_completed += 1
