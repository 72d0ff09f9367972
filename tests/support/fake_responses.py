"""The Responses API side of the fake upstream (tests/fake_upstream.py calls `register(server)`):
POST /v1/responses, plain and streamed with named events (`event: NAME` and `data: JSON`, sequence numbers
from 0, no [DONE]), as OpenAI's own API answers; Azure's forms POST /openai/responses?api-version=… (an
api-version of 2025-03-01-preview or later and an api-key header required) and /openai/v1/responses.

Answers are deterministic:
- with function tools (tool_choice not "none") and no function_call_output as the last input item: one
  function_call of the first tool (or the one `call=NAME` names), its required properties set to "Berlin";
- after a function_call_output: "Tool said: <output>";
- otherwise the fake upstream's fixed sentence (chunks=N words, default 8).
Ids are random (resp_, msg_, fc_, call_ and 32 hex digits). Tokens are whitespace-separated words (input:
instructions and every text of the input; output: the answer's words). `max_output_tokens` is honoured:
an answer cut short is `incomplete` (reason max_output_tokens), its stream closes with response.incomplete.

Failure modes use the fake upstream's directives (model suffix `+name=value`, or `[fake name=value]` in
the last input text): status=N, retry_after=S, first_byte_delay=S and hang=1 before any byte (as for chat);
chunk_delay=S before every stream event; die_after=N sends N events, then resets the connection;
error_after=N sends N events, then response.failed (error code server_error, usage of the input so far);
error_event_after=N sends N events, then an `error` event (code server_error) and ends the stream;
echo_key=1 puts the request's credential into those failures' messages (as a careless upstream might);
no_usage=1 leaves usage out (null). The bytes of a stream are kept in its request's /stats entry
(`stream_sent`), so that a test can compare them with what reached the client.
"""
from __future__ import annotations

import json
import os
import sys
import time

SLOW_MODES = ("status", "first_byte_delay", "hang")


def register(server) -> None:
    for path in ("/v1/responses", "/openai/responses", "/openai/v1/responses"):
        server.route("POST", path, responses)


def responses(request, server):
    """The route handler: a finished (status, headers, body) or a coroutine function for streams and slow answers."""
    fake = sys.modules[type(server).__module__]  # the running fake_upstream, for its shared helpers
    if request.path.startswith("/openai/"):
        if not request.headers.get("api-key"):
            return fake.error_reply(401, "Access denied due to missing api-key", "401")
        if request.path == "/openai/responses" and request.query.get("api-version", "") < "2025-03-01":
            return fake.error_reply(400, "The Responses API needs api-version 2025-03-01-preview or later",
                                    "BadRequest")
    body = request.json
    modes = {**fake.directives(request), **text_directives(fake, body)}
    response = build_response(fake, body, modes)
    if body.get("stream") or any(mode in modes for mode in SLOW_MODES):
        record = server.stats.recent[-1]  # this request's entry in /stats: the stream's bytes go there too
        return lambda exchange: answer_slowly(fake, exchange, body, modes, response, record)
    return fake.json_reply(200, response)


def text_directives(fake, body: dict) -> dict:
    found = {}
    for match in fake.DIRECTIVE.finditer(last_text(body.get("input"))):
        for part in match.group(1).split():
            name, _, value = part.partition("=")
            found[name] = value or "1"
    return found


def texts(value) -> list[str]:
    """Every text of an input (string, items, content parts, function call outputs)."""
    if isinstance(value, str):
        return [value]
    result = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, str):
            result.append(item)
        elif isinstance(item, dict):
            for name in ("text", "output", "arguments"):
                if isinstance(item.get(name), str):
                    result.append(item[name])
            result += texts(item.get("content"))
    return result


def last_text(value) -> str:
    if isinstance(value, list):
        value = value[-1:] if value else []
    return " ".join(texts(value))


def new_id(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


def chosen_tool(fake, body: dict, modes: dict) -> dict | None:
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    items = body.get("input") if isinstance(body.get("input"), list) else []
    last = items[-1] if items and isinstance(items[-1], dict) else {}
    if not tools or body.get("tool_choice") == "none" or last.get("type") == "function_call_output":
        return None
    if "call" in modes:
        return next((t for t in tools if t.get("name") == modes["call"]), None)
    return tools[0]


def build_response(fake, body: dict, modes: dict) -> dict:
    """The finished response object for a request."""
    tool = chosen_tool(fake, body, modes)
    items = body.get("input") if isinstance(body.get("input"), list) else []
    last = items[-1] if items and isinstance(items[-1], dict) else {}
    status, incomplete = "completed", None
    if tool is not None:
        required = (tool.get("parameters") or {}).get("required") or ["value"]
        arguments = json.dumps({name: "Berlin" for name in required})
        output = [{"type": "function_call", "id": new_id("fc_"), "call_id": new_id("call_"), "name": tool["name"],
                   "arguments": arguments, "status": "completed"}]
        output_tokens = len(fake.pieces_of(arguments))
    else:
        if last.get("type") == "function_call_output":
            text = f"Tool said: {last.get('output')}"
        else:
            text = " ".join((fake.ANSWER.split() * 4)[:int(modes.get("chunks", 8))])
        words = fake.pieces_of(text)
        cap = body.get("max_output_tokens")
        if isinstance(cap, int) and cap < len(words):
            words, status, incomplete = words[:cap], "incomplete", {"reason": "max_output_tokens"}
        output = [{"type": "message", "id": new_id("msg_"), "role": "assistant", "status": status,
                   "content": [{"type": "output_text", "text": "".join(words), "annotations": [], "logprobs": []}]}]
        output_tokens = len(words)
    input_tokens = sum(len(text.split()) for text in texts(body.get("input")) + [body.get("instructions") or ""])
    usage = None if "no_usage" in modes else {
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens}
    return {
        "id": new_id("resp_"), "object": "response", "created_at": int(time.time()), "status": status,
        "background": False, "error": None, "incomplete_details": incomplete,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"), "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": usage, "user": None, "metadata": body.get("metadata") or {},
    }


def stream_events(fake, response: dict) -> list[dict]:
    """The events of a streamed response, without sequence numbers."""
    start = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    events = [{"type": "response.created", "response": start}, {"type": "response.in_progress", "response": start}]
    for index, item in enumerate(response["output"]):
        if item["type"] == "function_call":
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "arguments": "", "status": "in_progress"}})
            for piece in fake.pieces_of(item["arguments"]):
                events.append({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                               "output_index": index, "delta": piece})
            events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                           "output_index": index, "arguments": item["arguments"]})
        else:
            part = item["content"][0]
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "content": [], "status": "in_progress"}})
            events.append({"type": "response.content_part.added", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "part": {**part, "text": ""}})
            for piece in fake.pieces_of(part["text"]):
                events.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": index,
                               "content_index": 0, "delta": piece, "logprobs": []})
            events.append({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "text": part["text"], "logprobs": []})
            events.append({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                           "content_index": 0, "part": part})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    closing = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    events.append({"type": closing, "response": response})
    return events


async def answer_slowly(fake, exchange, body: dict, modes: dict, response: dict, record: dict) -> None:
    if not await fake.before_first_byte(exchange, modes):
        return
    if not body.get("stream"):
        exchange.send(fake.json_reply(200, response))
        return
    stats = exchange.stats
    echoed = " " + exchange.request.headers.get("authorization", "") if "echo_key" in modes else ""
    exchange.start_stream()
    stats.streams_started += 1
    if "hang" in modes:
        await exchange.hold()
        stats.closed_by_client += 1
        return
    delay = float(modes.get("chunk_delay", 0))
    events = stream_events(fake, response)
    record["stream_sent"] = ""
    for sequence, event in enumerate(events):
        if sequence == int(modes.get("die_after", -1)):
            exchange.abort()
            return
        if sequence == int(modes.get("error_after", -1)):
            failed = {**response, "status": "failed", "output": [], "incomplete_details": None,
                      "error": {"code": "server_error", "message": "fake failure mid-stream" + echoed},
                      "usage": response["usage"] and {**response["usage"], "output_tokens": 0,
                                                      "total_tokens": response["usage"]["input_tokens"]}}
            event = {"type": "response.failed", "response": failed}
        if sequence == int(modes.get("error_event_after", -1)):
            event = {"type": "error", "code": "server_error", "message": "fake error event" + echoed, "param": None}
        if not await exchange.sleep(delay):
            stats.closed_by_client += 1
            return
        data = json.dumps({**event, "sequence_number": sequence}, separators=(",", ":"))
        frame = f"event: {event['type']}\ndata: {data}\n\n"
        record["stream_sent"] += frame
        exchange.chunk(frame.encode())
        if event["type"] in ("response.failed", "error"):
            break
    exchange.end_stream()
    stats.streams_completed += 1
