"""POST /v1/responses forwarded to an upstream that offers the Responses API itself (its connection's
`responses_api` flag), instead of translated to chat completions.

Same pipeline as every call (keys, scopes, IP and model rules, limits, the budget, the request log). The
body goes upstream as the client sent it except for what app/wire/responses_native.py changes (model,
store: false, the stored conversation for `previous_response_id`, tools that are not functions) and what
the pipeline has set (the output cap it reserved for, an assistant's instructions and defaults). Upstream
errors before an answer are mapped as on the chat path.

A plain answer is the upstream's, with `model` the public id and `previous_response_id` the client's; its
usage is settled. A stream is relayed event by event, byte for byte as the upstream sent it: usage is read
from the closing `response.completed`, `response.incomplete` or `response.failed` (a failure, `response.failed`
or `error`, has the connection's credential cut out should the upstream echo it). When the stream breaks
off, or ends without one of those, Pforte ends it with its own `response.failed`. A key that keeps
conversations stores the finished response (under the upstream's id, which the client saw); if it cannot
be stored the client gets `response.failed` in its place.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from flask import Response

from app.api_errors import ApiError
from app.gateway import conversation_context, pipeline
from app.gateway.openai_api import fail_after, json_response, testing_fault
from app.gateway.pipeline import Call
from app.gateway.relay import StreamEncoder, open_stream
from app.providers.base import Usage, upstream_failed
from app.wire.responses_answer import response_shell
from app.wire.responses_native import native_request
from app.wire.responses_stream import response_error

DROPPED_TOOLS_HEADER = "x-pforte-dropped-tools"
CLOSING_EVENTS = (b"response.completed", b"response.incomplete", b"response.failed")
EVENT_TYPE = re.compile(rb'"type"\s*:\s*"([^"]+)"')
SEQUENCE_NUMBER = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
OUTPUT_DELTA = b"response.output_text.delta"

Keep = Callable[[Call, dict], None]  # stores a finished response (responses_api.keep)


def answer_native(call: Call, keep: Keep) -> Response:
    """Steps 8 and 9 for a connection whose upstream offers the Responses API."""
    fault = testing_fault(call)
    request = native_request(call.body, model=call.model.upstream_model,
                             earlier=conversation_context.earlier_items(call))
    prompt_tokens = pipeline.estimate_prompt_tokens(request.body)
    result = pipeline.forward(call, "responses", request.body)
    if call.stream:
        encoder = NativeStreamEncoder(call, prompt_tokens, keep)
        if fault == "stream":
            fail_after(encoder, 3)
        response = open_stream(call, result, encoder)
    else:
        counts = usage_counts(result.get("usage"))
        call.usage = Usage(*counts) if counts else Usage(prompt_tokens, _output_estimate(result), estimated=True)
        answered(call, result)
        keep(call, result)
        response = json_response(result)
    if request.dropped_tools:
        response.headers[DROPPED_TOOLS_HEADER] = ", ".join(request.dropped_tools)
    return response


def answered(call: Call, response: dict) -> dict:
    """The response as the client knows it: the public model id and its own previous_response_id."""
    response["model"] = call.model.public_id
    response["previous_response_id"] = call.body.get("previous_response_id")
    return response


def usage_counts(usage) -> tuple[int, int] | None:
    """input and output tokens of a Responses `usage` object."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


def _output_estimate(response: dict) -> int:
    chars = 0
    for item in response.get("output") or ():
        if isinstance(item, dict):
            chars += len(item.get("arguments") or "")
            for part in item.get("content") or ():
                chars += len(part.get("text") or "") if isinstance(part, dict) else 0
    return (chars + 3) // 4


def event_type(block: bytes) -> bytes | None:
    """The type of one SSE block: its `event:` name, else the `type` in its data."""
    if block.startswith(b"event: "):
        return block[7:block.find(b"\n")].strip()
    found = EVENT_TYPE.search(block)
    return found.group(1) if found else None


def event_data(block: bytes) -> dict:
    """The JSON of one SSE block's data lines ({} when it is none)."""
    lines = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
    try:
        value = json.loads(b"\n".join(lines))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class NativeStreamEncoder(StreamEncoder):
    """Passes the upstream's Responses events (whole SSE blocks, see ResponsesEventStream) on unchanged,
    reading what settlement and storage need: the response of `response.created` (for a response.failed of
    our own), the text deltas (an estimate when no usage comes), and the usage and finished response of the
    closing event. Two JSON parses per stream; the other events are looked at, not parsed."""

    def __init__(self, call: Call, prompt_tokens: int, keep: Keep):
        super().__init__(call)
        self.prompt_tokens = prompt_tokens
        self.keep = keep
        self.shell: dict | None = None
        self.last = b""  # the last event passed on (its sequence number is read when we need the next)
        self.closed = False  # a closing event (or an upstream error event) has been passed on

    def encode(self, block: bytes) -> bytes:
        name = event_type(block)
        if name in CLOSING_EVENTS:
            return self._closing(name, block)
        if name == OUTPUT_DELTA:
            self.call.output_estimate += 1
        elif self.shell is None and name == b"response.created":
            self.shell = event_data(block).get("response")
        elif name == b"error":
            self.closed = True
            self.call.fail(upstream_failed())
            block = self._scrubbed(block)
        self.last = block
        return block

    def _closing(self, name: bytes, block: bytes) -> bytes:
        self.closed = True
        response = event_data(block).get("response")
        response = response if isinstance(response, dict) else {}
        counts = usage_counts(response.get("usage"))
        self.call.usage = Usage(*counts) if counts else self._estimate()
        if name == b"response.failed":
            self.call.fail(upstream_failed())
            return self._scrubbed(block)
        try:
            self.keep(self.call, answered(self.call, response))
        except ApiError as error:  # our response.failed goes out in its place, under its number
            self.call.fail(error)
            self.closed = False
            return self.error(error)
        return block

    def _scrubbed(self, block: bytes) -> bytes:
        """An upstream failure without the connection's credential, should the upstream echo it."""
        secret = self.call.model.target.api_key
        if secret and len(secret) >= 4 and secret.encode() in block:
            return block.replace(secret.encode(), b"[redacted]")
        return block

    def end(self) -> bytes:
        if self.closed:
            return b""
        error = upstream_failed("The upstream model server ended the stream before the response was complete.")
        self.call.fail(error)
        return self.error(error)

    def error(self, error: ApiError) -> bytes:
        """Our own response.failed, numbered after the last event passed on."""
        if self.closed:
            return b""
        self.closed = True
        if self.call.usage is None:
            self.call.usage = self._estimate()
        shell = self.shell if isinstance(self.shell, dict) else response_shell(self.call.body,
                                                                               model=self.call.model.public_id)
        found = SEQUENCE_NUMBER.search(self.last)
        event = {"type": "response.failed", "sequence_number": int(found.group(1)) + 1 if found else 0,
                 "response": {**shell, "status": "failed", "error": response_error(error)}}
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return f"event: response.failed\ndata: {data}\n\n".encode()

    def _estimate(self) -> Usage:
        return Usage(self.prompt_tokens, self.call.output_estimate, estimated=True)
