"""A fake OpenAI-style upstream for tests and benchmarks: `python tests/fake_upstream.py --port N`.

A small asyncio HTTP/1.1 server (keep-alive, no framework) so that it is fast enough to benchmark the
gateway against. It speaks:
  POST /v1/chat/completions   plain, streamed (with stream_options.include_usage), tool calls, JSON mode
  POST /v1/completions        legacy completions, plain and streamed
  POST /v1/embeddings         float or base64 (encoding_format)
  GET  /v1/models
  POST /openai/deployments/<name>/<same paths>?api-version=…   Azure style (api-key header required)
  GET  /health                the fixture waits on it
  GET  /stats                 counters and the last requests (headers, query, JSON body) as JSON
  POST /stats/reset
Handlers from tests/support/fake_anthropic.py (POST /v1/messages) and tests/support/fake_responses.py
(POST /v1/responses, OpenAI's own Responses API, and Azure's forms of it) are added when those modules
exist (`register(server)`).

Failure modes are chosen per request by directives, either in the model name after a `+`
(`gpt-fake+die_after=3+chunk_delay=0.1`) or in the last message / prompt / input text as
`[fake die_after=3 chunk_delay=0.1]`:
  status=N            answer HTTP N with an OpenAI error body before any byte of a stream
  retry_after=S       with status=429: a retry-after header
  first_byte_delay=S  wait S seconds before the status line
  chunk_delay=S       wait S seconds before every stream chunk
  pause=S             wait S seconds once, after the stream's headers and before its first chunk
  chunks=N            number of content chunks (default 8)
  chunk_bytes=N       pad every content chunk of a stream to N characters (a long stream fills buffers fast)
  die_after=N         send N stream chunks, then reset the connection
  hang=1              never answer (stream: after the headers); the client has to give up
  hang_after=N        send N stream chunks, then fall silent
  error_after=N       send N stream chunks, then a `data: {"error": …}` event
  malformed=1         invalid JSON (plain answer) or an invalid chunk (stream)
  no_usage=1          leave out usage (plain and streamed)
  bare_usage=1        usage with only prompt_tokens and completion_tokens (no total, no details objects)
  spaced=1            JSON with spaces after separators ("model": "x")
  crlf=1              CRLF line endings in the stream
  close=1             answer with Connection: close and close the connection
  call=NAME           call the function tool NAME (not the first one), setting only its required properties
  arg=VALUE           with call=NAME: the value of those properties, percent-decoded (default Berlin)
  trickle=S           (not streamed) send the JSON body in ten pieces, S seconds apart
  cut_body=1          (not streamed) send the head and half the body, then reset the connection
  talk=N              answer like a real model that talks N words unless stopped: `n` choices (chat; for
                      completions `n` per prompt), each cut at `max_completion_tokens` or else `max_tokens`
                      (finish_reason "length"); usage counts every choice's words
  pad=N               N more characters in the answer (plain: a body that long; streamed: one chunk that long)
  gzip=1              (not streamed) the JSON body gzip-compressed (Content-Encoding: gzip); with pad=N a
                      small body that inflates to more than N bytes
Option --max-requests-per-connection N closes every kept-alive connection after N requests (announced
with Connection: close). Option --drop-after N answers N requests on a connection as kept-alive ones and
then closes the connection without a word when the next request arrives on it (an idle timeout that fires
just as a request comes in); such requests are counted as `dropped`, not as `requests`.
Options --tls-cert FILE --tls-key FILE serve HTTPS instead of HTTP.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import re
import struct
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

DIRECTIVE = re.compile(r"\[fake ([^\]]*)\]")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           408: "Request Timeout", 413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
           529: "Overloaded"}
ANSWER = "This is the fake upstream answering your request with a fixed sentence of words"
MODELS = ("gpt-fake", "gpt-fake-mini", "org/model:tag", "text-embedding-fake")
RECENT = 100


class Stats:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: dict[str, int] = {}
        self.streams_started = 0
        self.streams_completed = 0
        self.closed_by_client = 0  # streams or held answers the client closed before they ended
        self.connections = 0
        self.dropped = 0  # requests that arrived on a connection the server then closed (--drop-after)
        self.recent: deque = deque(maxlen=RECENT)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "by_path": self.by_path, "streams_started": self.streams_started,
                "streams_completed": self.streams_completed, "closed_by_client": self.closed_by_client,
                "connections": self.connections, "dropped": self.dropped, "recent": list(self.recent)}


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "_json")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes):
        parts = urlsplit(target)
        self.method = method
        self.path = unquote(parts.path)
        self.query = dict(parse_qsl(parts.query))
        self.headers = headers
        self.body = body
        self._json = None

    @property
    def json(self) -> dict:
        if self._json is None:
            try:
                value = json.loads(self.body) if self.body else {}
            except ValueError:
                value = {}
            self._json = value if isinstance(value, dict) else {}
        return self._json


def reply(status: int, body: bytes, content_type: str = "application/json",
          headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": content_type, **(headers or {})}, body


def json_reply(status: int, value, headers: dict[str, str] | None = None, spaced: bool = False):
    separators = (", ", ": ") if spaced else (",", ":")
    return reply(status, json.dumps(value, separators=separators).encode(), headers=headers)


def error_reply(status: int, message: str, code: str | None = None, headers: dict | None = None):
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json_reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)


class Exchange:
    """What an async handler uses to answer: plain replies, or a chunked stream it writes piece by piece."""

    def __init__(self, protocol: HTTPProtocol, request: Request):
        self.protocol = protocol
        self.request = request
        self.stats = protocol.server.stats

    @property
    def client_gone(self) -> bool:
        return self.protocol.lost.done()

    async def sleep(self, seconds: float) -> bool:
        """Wait; False when the client went away meanwhile."""
        if seconds > 0:
            await asyncio.wait([self.protocol.lost], timeout=seconds)
        return not self.client_gone

    async def hold(self) -> None:
        """Wait until the client gives up."""
        await asyncio.shield(self.protocol.lost)

    def send(self, response: tuple[int, dict, bytes]) -> None:
        self.protocol.write_response(*response)

    def start_stream(self, status: int = 200, content_type: str = "text/event-stream",
                     headers: dict | None = None) -> None:
        head = {"Content-Type": content_type, "Cache-Control": "no-cache", **(headers or {})}
        self.protocol.write_head(status, head, chunked=True)

    def chunk(self, data: bytes) -> None:
        if data and not self.client_gone:
            self.protocol.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if not self.client_gone:
            self.protocol.transport.write(b"0\r\n\r\n")

    def abort(self) -> None:
        self.protocol.transport.abort()


class FakeServer:
    def __init__(self, max_requests_per_connection: int = 0, drop_after: int = 0):
        self.stats = Stats()
        self.drop_after = drop_after
        self.routes: dict[tuple[str, str], object] = {}
        self.prefix_routes: list[tuple[str, str, object]] = []
        self.max_requests = max_requests_per_connection

    def route(self, method: str, path: str, handler) -> None:
        """handler(request, server) → (status, headers, body) or a coroutine function taking an Exchange."""
        self.routes[(method, path)] = handler

    def dispatch(self, request: Request):
        handler = self.routes.get((request.method, request.path))
        if handler is None and request.path.startswith("/openai/deployments/"):
            return azure(request, self)
        if handler is None:
            return error_reply(404, f"Invalid URL ({request.method} {request.path})", "unknown_url")
        return handler(request, self)


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, server: FakeServer):
        self.server = server
        self.buffer = bytearray()
        self.busy = False
        self.served = 0
        self.head_written = False
        self.close_after = False
        self.transport = None
        self.lost: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()
        self.server.stats.connections += 1

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(True)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.process()

    def process(self) -> None:
        while not self.busy and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            try:
                method, target, _ = head[0].split(" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.handle(Request(method, target, headers, body))

    def handle(self, request: Request) -> None:
        stats = self.server.stats
        if self.server.drop_after and self.served >= self.server.drop_after:
            stats.dropped += 1
            self.transport.close()
            return
        stats.requests += 1
        stats.by_path[request.path] = stats.by_path.get(request.path, 0) + 1
        if request.path not in ("/stats", "/health", "/stats/reset"):
            stats.recent.append({"method": request.method, "path": request.path, "query": request.query,
                                 "headers": request.headers, "json": request.json})
        self.served += 1
        self.close_after = bool(request.headers.get("connection", "").lower() == "close" or (
            self.server.max_requests and self.served >= self.server.max_requests)
            or (request.method == "POST" and "close" in directives(request)))
        self.head_written = False
        try:
            result = self.server.dispatch(request)
        except Exception as exc:  # noqa: BLE001 - a request the fake cannot read: refused, as a real API does
            result = error_reply(400, f"The fake upstream cannot read this request ({type(exc).__name__}: {exc}).",
                                 "invalid_request")
        if isinstance(result, tuple):
            self.write_response(*result)
            return
        self.busy = True
        task = asyncio.ensure_future(result(Exchange(self, request)))
        task.add_done_callback(self.finished)

    def finished(self, task: asyncio.Task) -> None:
        self.busy = False
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            print(f"handler failed: {exc!r}", file=sys.stderr)
            if self.head_written:
                self.transport.abort()
                return
            self.write_response(*error_reply(  # nothing sent yet: refused, as a real API does
                400, f"The fake upstream cannot read this request ({type(exc).__name__}: {exc}).", "invalid_request"))
        if self.close_after:
            self.transport.close()
            return
        if self.buffer:
            self.process()

    def write_head(self, status: int, headers: dict, chunked: bool = False, length: int | None = None) -> None:
        self.head_written = True
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        if self.close_after:
            headers["Connection"] = "close"
        for name, value in headers.items():
            lines.append(f"{name}: {value}")
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length or 0}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def write_response(self, status: int, headers: dict, body: bytes) -> None:
        if self.transport.is_closing():
            return
        self.write_head(status, dict(headers), length=len(body))
        self.transport.write(body)
        if self.close_after and not self.busy:
            self.transport.close()


# --- directives ----------------------------------------------------------------------------------

def directives(request: Request) -> dict[str, str]:
    return directives_of(request.json)


def directives_of(body: dict) -> dict[str, str]:
    found: dict[str, str] = {}
    model = str(body.get("model") or "")
    for part in model.split("+")[1:]:
        name, _, value = part.partition("=")
        found[name] = value or "1"
    text = _last_text(body)
    for match in DIRECTIVE.finditer(text):
        for part in match.group(1).split():
            name, _, value = part.partition("=")
            found[name] = value or "1"
    return found


def _last_text(body: dict) -> str:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return str(content or "")
    for field in ("prompt", "input"):
        value = body.get(field)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and isinstance(value[0], str):
            return " ".join(value)
    return ""


def _words(value) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v.get("text") if isinstance(v, dict) else v) for v in value)
    return 0


def prompt_tokens(body: dict) -> int:
    count = sum(_words(m.get("content")) for m in body.get("messages") or () if isinstance(m, dict))
    return count + _words(body.get("prompt")) + _words(body.get("input"))


def usage(prompt: int, completion: int, modes: dict | None = None) -> dict:
    if modes and "bare_usage" in modes:
        return {"prompt_tokens": prompt, "completion_tokens": completion}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


# --- OpenAI handlers -----------------------------------------------------------------------------

def tool_for(body: dict) -> dict | None:
    tools = [t.get("function") for t in body.get("tools") or () if isinstance(t, dict)]
    tools = [t for t in tools if isinstance(t, dict) and t.get("name")]
    messages = body.get("messages") or []
    if not tools or body.get("tool_choice") == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    modes = directives_of(body)
    if "call" in modes:
        tool = next((t for t in tools if t["name"] == modes["call"]), None)
        if tool is None:
            return None
        value = unquote(modes.get("arg", "Berlin"))
        return {"name": tool["name"], "arguments": json.dumps(
            {name: value for name in (tool.get("parameters") or {}).get("required") or ()})}
    tool = tools[0]
    props = (tool.get("parameters") or {}).get("properties") or {}
    arguments = json.dumps({name: "Berlin" for name in props} or {"value": "Berlin"})
    return {"name": tool["name"], "arguments": arguments}


def answer_text(body: dict, modes: dict) -> str:
    count = int(modes.get("chunks", 8))
    words = (ANSWER.split() * max(4, count // len(ANSWER.split()) + 1))[:count]
    text = " ".join(words)
    if "pad" in modes:
        text += " " + "x" * int(modes["pad"])
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return json.dumps({"answer": text})
    return text


def pieces_of(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or [text]


def chat(request: Request, server: FakeServer):
    body = request.json
    modes = directives(request)
    if body.get("stream") or any(mode in modes for mode in SLOW_MODES):
        return lambda exchange: chat_slow(exchange, body, modes)
    if "malformed" in modes:
        return reply(200, b'{"id": "chatcmpl-broken", "choices": [')
    answer = json_reply(200, chat_completion(body, modes), spaced="spaced" in modes)
    if "gzip" in modes:
        status, headers, data = answer
        answer = status, {**headers, "Content-Encoding": "gzip"}, gzip.compress(data, 9)
    return answer


def talk_choices(body: dict, modes: dict, prompts: int = 1) -> list[tuple[list[str], str]]:
    """talk=N: the words and finish reason of every choice, as a real server caps them."""
    count, n = int(modes["talk"]), body.get("n") or 1
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    sentence = ANSWER.split()
    words = [" " + word for word in (sentence * (count // len(sentence) + 1))[:count]]
    if isinstance(cap, int) and 0 < cap < count:
        return [(words[:cap], "length")] * (n * prompts)
    return [(words, "stop")] * (n * prompts)


def talk_completion(body: dict, modes: dict) -> dict:
    choices = talk_choices(body, modes)
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": "".join(words).strip()},
                         "logprobs": None, "finish_reason": finish} for i, (words, finish) in enumerate(choices)],
            "usage": usage(prompt_tokens(body), sum(len(words) for words, _ in choices), modes)}


def chat_completion(body: dict, modes: dict) -> dict:
    if "talk" in modes:
        return talk_completion(body, modes)
    tool = tool_for(body)
    message: dict = {"role": "assistant", "content": None if tool else answer_text(body, modes), "refusal": None}
    if tool:
        message["tool_calls"] = [{"id": "call_fake1", "type": "function", "function": tool}]
    completion = len(pieces_of(tool["arguments"] if tool else message["content"]))
    result = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
              "model": body.get("model"), "system_fingerprint": "fp_fake",
              "choices": [{"index": 0, "message": message, "logprobs": None,
                           "finish_reason": "tool_calls" if tool else "stop"}]}
    if "no_usage" not in modes:
        result["usage"] = usage(prompt_tokens(body), completion, modes)
    return result


async def before_first_byte(exchange: Exchange, modes: dict) -> bool:
    """Delays, holds and error statuses shared by every handler. False when the answer is complete."""
    if not await exchange.sleep(float(modes.get("first_byte_delay", 0))):
        exchange.stats.closed_by_client += 1
        return False
    if "hang" in modes and not exchange.request.json.get("stream"):
        await exchange.hold()
        exchange.stats.closed_by_client += 1
        return False
    if "status" in modes:
        status = int(modes["status"])
        headers = {"retry-after": modes["retry_after"]} if "retry_after" in modes else None
        exchange.send(error_reply(status, f"fake upstream failure {status}", "fake_failure", headers))
        return False
    return True


SLOW_MODES = ("status", "first_byte_delay", "hang", "trickle", "cut_body")


async def send_body(exchange: Exchange, response: tuple[int, dict, bytes], modes: dict) -> None:
    """A plain answer, at once or with the body trickling (trickle=S) or cut off (cut_body)."""
    if "trickle" not in modes and "cut_body" not in modes:
        exchange.send(response)
        return
    status, headers, data = response
    exchange.protocol.write_head(status, dict(headers), length=len(data))
    if "cut_body" in modes:
        exchange.protocol.transport.write(data[: len(data) // 2])
        exchange.abort()
        return
    step = len(data) // 10 + 1
    for start in range(0, len(data), step):
        if not await exchange.sleep(float(modes["trickle"])):
            exchange.stats.closed_by_client += 1
            return
        exchange.protocol.transport.write(data[start:start + step])


async def chat_slow(exchange: Exchange, body: dict, modes: dict) -> None:
    if not await before_first_byte(exchange, modes):
        return
    if not body.get("stream"):
        await send_body(exchange, json_reply(200, chat_completion(body, modes), spaced="spaced" in modes), modes)
        return
    created, model = int(time.time()), body.get("model")

    def chunk(delta: dict | None, finish=None, extra=None) -> dict:
        value = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_fake",
                 "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                                       "finish_reason": finish}]}
        value.update(extra or {})
        return value

    tool = tool_for(body)
    events = []
    if "talk" in modes:
        choices = talk_choices(body, modes)
        for index, (words, finish) in enumerate(choices):
            events += [{**chunk({"content": w}), "choices": [{"index": index, "delta": {"content": w},
                                                              "logprobs": None, "finish_reason": None}]}
                       for w in words]
            events.append({**chunk({}), "choices": [{"index": index, "delta": {}, "logprobs": None,
                                                     "finish_reason": finish}]})
        completion = sum(len(words) for words, _ in choices)
    elif tool:
        events.append(chunk({"role": "assistant", "content": None, "refusal": None}))
        args = pieces_of(tool["arguments"])
        events.append(chunk({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                             "function": {"name": tool["name"], "arguments": ""}}]}))
        events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in args]
        completion = len(args)
    else:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        words = pieces_of(answer_text(body, modes))
        pad = int(modes.get("chunk_bytes", 0))
        events += [chunk({"content": w.ljust(pad, ".")}) for w in words]
        completion = len(words)
    events.append(chunk({}, "tool_calls" if tool else "stop"))
    if (body.get("stream_options") or {}).get("include_usage") and "no_usage" not in modes:
        events.append(chunk(None, extra={"usage": usage(prompt_tokens(body), completion, modes)}))
    await send_events(exchange, events, modes)


async def send_events(exchange: Exchange, events: list[dict], modes: dict) -> None:
    """Stream `events` as SSE with the failure modes that apply after the first byte."""
    stats = exchange.stats
    separators = (", ", ": ") if "spaced" in modes else (",", ":")
    end = b"\r\n\r\n" if "crlf" in modes else b"\n\n"
    delay = float(modes.get("chunk_delay", 0))
    limits = {name: int(modes[name]) for name in ("die_after", "hang_after", "error_after") if name in modes}
    exchange.start_stream()
    stats.streams_started += 1
    if "hang" in modes:
        await exchange.hold()
        stats.closed_by_client += 1
        return
    if not await exchange.sleep(float(modes.get("pause", 0))):
        stats.closed_by_client += 1
        return
    for index, event in enumerate(events):
        if index == limits.get("die_after"):
            exchange.abort()
            return
        if index == limits.get("hang_after"):
            await exchange.hold()
            stats.closed_by_client += 1
            return
        if index == limits.get("error_after"):
            error = {"error": {"message": "fake failure mid-stream", "type": "server_error", "param": None,
                               "code": "fake_failure"}}
            exchange.chunk(b"data: " + json.dumps(error).encode() + end)
            exchange.end_stream()
            return
        if not await exchange.sleep(delay):
            stats.closed_by_client += 1
            return
        data = json.dumps(event, separators=separators).encode()
        if "malformed" in modes and index == 1:
            data = data[: len(data) // 2]
        exchange.chunk(b"data: " + data + end)
    if exchange.client_gone:
        stats.closed_by_client += 1
        return
    exchange.chunk(b"data: [DONE]" + end)
    exchange.end_stream()
    stats.streams_completed += 1


def completions(request: Request, server: FakeServer):
    body = request.json
    modes = directives(request)
    text = " " + answer_text(body, modes)
    if "status" in modes or "first_byte_delay" in modes or "hang" in modes or body.get("stream"):
        return lambda exchange: completions_slow(exchange, body, modes, text)
    return json_reply(200, completion_object(body, modes, text))


def completion_object(body: dict, modes: dict, text: str) -> dict:
    result = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
              "model": body.get("model"),
              "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}]}
    if "talk" in modes:
        prompt = body.get("prompt")
        prompts = len(prompt) if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else 1
        choices = talk_choices(body, modes, prompts)
        result["choices"] = [{"text": "".join(words), "index": i, "logprobs": None, "finish_reason": finish}
                             for i, (words, finish) in enumerate(choices)]
        result["usage"] = usage(prompt_tokens(body), sum(len(words) for words, _ in choices), modes)
    elif "no_usage" not in modes:
        result["usage"] = usage(prompt_tokens(body), len(pieces_of(text)), modes)
    return result


async def completions_slow(exchange: Exchange, body: dict, modes: dict, text: str) -> None:
    if not await before_first_byte(exchange, modes):
        return
    if not body.get("stream"):
        exchange.send(json_reply(200, completion_object(body, modes, text)))
        return
    created, words = int(time.time()), pieces_of(text)
    events = [{"id": "cmpl-fake", "object": "text_completion", "created": created, "model": body.get("model"),
               "choices": [{"text": w, "index": 0, "logprobs": None,
                            "finish_reason": "stop" if i == len(words) - 1 else None}]}
              for i, w in enumerate(words)]
    if (body.get("stream_options") or {}).get("include_usage") and "no_usage" not in modes:
        events.append({"id": "cmpl-fake", "object": "text_completion", "created": created,
                       "model": body.get("model"), "choices": [],
                       "usage": usage(prompt_tokens(body), len(words), modes)})
    await send_events(exchange, events, modes)


def vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * (dimensions // 32 + 1)
    return [round((b - 127.5) / 127.5, 4) for b in digest[:dimensions]]


def embeddings(request: Request, server: FakeServer):
    body = request.json
    modes = directives(request)
    if "status" in modes or "first_byte_delay" in modes or "hang" in modes:
        async def slow(exchange):
            if await before_first_byte(exchange, modes):
                exchange.send(json_reply(200, embedding_list(body)))
        return slow
    return json_reply(200, embedding_list(body))


def embedding_list(body: dict) -> dict:
    items = body.get("input")
    if isinstance(items, str) or (isinstance(items, list) and items and isinstance(items[0], int)):
        items = [items]
    dimensions = int(body.get("dimensions") or 8)
    data = []
    for index, item in enumerate(items or []):
        values = vector(item if isinstance(item, str) else json.dumps(item), dimensions)
        if body.get("encoding_format") == "base64":
            values = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": values})
    return {"object": "list", "data": data, "model": body.get("model"),
            "usage": {"prompt_tokens": prompt_tokens(body), "total_tokens": prompt_tokens(body)}}


def models(request: Request, server: FakeServer):
    return json_reply(200, {"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in MODELS]})


AZURE = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$")


def azure(request: Request, server: FakeServer):
    match = AZURE.match(request.path)
    if not match or request.method != "POST":
        return error_reply(404, "Resource not found", "404")
    if not request.headers.get("api-key"):
        return error_reply(401, "Access denied due to missing api-key", "401")
    if not request.query.get("api-version"):
        return error_reply(404, "api-version is missing", "404")
    request.json["model"] = request.json.get("model") or match.group(1)
    handler = {"chat/completions": chat, "completions": completions, "embeddings": embeddings}[match.group(2)]
    return handler(request, server)


def health(request: Request, server: FakeServer):
    return json_reply(200, {"status": "ok"})


def stats(request: Request, server: FakeServer):
    return json_reply(200, server.stats.as_dict())


def reset_stats(request: Request, server: FakeServer):
    server.stats.reset()
    return json_reply(200, {"status": "reset"})


def build_server(max_requests_per_connection: int = 0, drop_after: int = 0) -> FakeServer:
    server = FakeServer(max_requests_per_connection, drop_after)
    for method, path, handler in (
        ("POST", "/v1/chat/completions", chat), ("POST", "/v1/completions", completions),
        ("POST", "/v1/embeddings", embeddings), ("GET", "/v1/models", models), ("GET", "/health", health),
        ("GET", "/stats", stats), ("POST", "/stats/reset", reset_stats),
    ):
        server.route(method, path, handler)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for name in ("fake_anthropic", "fake_responses"):
        try:
            module = __import__(f"support.{name}", fromlist=[name])
        except ImportError:
            continue
        module.register(server)
    return server


async def main(host: str, port: int, max_requests: int, drop_after: int = 0, tls=None) -> None:
    server = build_server(max_requests, drop_after)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: HTTPProtocol(server), host, port, backlog=2048, ssl=tls)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--max-requests-per-connection", type=int, default=0)
    parser.add_argument("--drop-after", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    options = parser.parse_args()
    tls = None
    if options.tls_cert:
        import ssl

        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(options.tls_cert, options.tls_key)
    try:
        asyncio.run(main(options.host, options.port, options.max_requests_per_connection, options.drop_after,
                         tls))
    except KeyboardInterrupt:
        pass
