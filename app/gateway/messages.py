"""POST /v1/messages: the Anthropic Messages API in front of any model.

The request takes the same pipeline as the OpenAI endpoints (pipeline.run, endpoint "messages"); only
the translation differs. A model on an Anthropic connection gets the request as it is (with the
client's `anthropic-beta`); any other model gets it translated to an OpenAI chat request, and its answer
or stream is translated back. Errors use Anthropic's shape, and every answer carries `request-id` (the
header the anthropic SDK reads) next to `x-request-id`. Any `anthropic-version` is accepted.
"""
from __future__ import annotations

import json

from flask import Response

from app.api_errors import ApiError
from app.gateway import errors, pipeline
from app.gateway.openai_api import json_response
from app.gateway.openai_stream import chunk_dict
from app.gateway.pipeline import Call
from app.gateway.relay import StreamEncoder, open_stream
from app.providers import provider_for
from app.providers.base import IteratorStream, Usage
from app.wire.anthropic_to_openai import anthropic_request_to_openai, validate_anthropic_request
from app.wire.openai_to_anthropic import openai_chunks_to_anthropic_events, openai_response_to_anthropic
from app.wire.shared import TranslationError, anthropic_error_body, anthropic_usage_from_openai


def handle_messages(environ: dict) -> Response:
    response = pipeline.run(environ, "messages", answer_messages, validate=validate_messages,
                            render_error=anthropic_error_response)
    response.headers["request-id"] = response.headers["x-request-id"]
    return response


def validate_messages(body: dict) -> None:
    """Step 5: model, max_tokens and messages as the Messages API requires them."""
    try:
        validate_anthropic_request(body)
    except TranslationError as exc:
        raise errors.invalid_request(exc.message, param=exc.param) from None


def anthropic_error_response(error: ApiError, request_id: str | None = None) -> Response:
    body = anthropic_error_body(error.status, error.message, request_id)
    return Response(json.dumps(body, ensure_ascii=False), status=error.status,
                    headers=errors.response_headers(error), mimetype="application/json")


# --- steps 8 and 9 -------------------------------------------------------------------------------

def answer_messages(call: Call) -> Response:
    if call.model.target.kind == "anthropic":
        return _answer_native(call)
    return _answer_translated(call)


def _answer_native(call: Call) -> Response:
    """An Anthropic upstream: the request and the answer keep their shape; only `model` is rewritten."""
    body = {**call.body, "model": call.model.upstream_model}
    call.forwarded = True
    beta = call.environ.get("HTTP_ANTHROPIC_BETA")
    result = provider_for("anthropic").messages(call.model.target, body, call.stream, beta=beta)
    public = call.model.public_id
    if call.stream:
        return open_stream(call, result, AnthropicStreamEncoder(call, public, usage_in_events=True))
    result["model"] = public
    usage = result.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
        call.usage = Usage(_input_tokens(usage), usage["output_tokens"])
    else:
        call.usage = _estimated_usage(call, result)
    return json_response(result)


def _answer_translated(call: Call) -> Response:
    """Any other upstream: Anthropic → OpenAI chat request, and the answer or stream back to Anthropic."""
    try:
        body = anthropic_request_to_openai(call.body)
    except TranslationError as exc:
        raise errors.invalid_request(exc.message, param=exc.param) from None
    body["model"] = call.model.upstream_model
    result = pipeline.forward(call, "chat", body)
    public = call.model.public_id
    if call.stream:
        events = openai_chunks_to_anthropic_events(
            _chunks_recording_usage(result, call), model=public,
            message_id="msg_" + call.request_id.removeprefix("req_"),
            input_tokens=pipeline.estimate_prompt_tokens(call.body))
        stream = IteratorStream(events, on_close=result.close)
        return open_stream(call, stream, AnthropicStreamEncoder(call, public, usage_in_events=False))
    message = openai_response_to_anthropic(result, model=public)
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    if isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
        call.usage = Usage(usage["prompt_tokens"], usage["completion_tokens"])
    else:
        call.usage = _estimated_usage(call, message)
        message["usage"] = anthropic_usage_from_openai({"prompt_tokens": call.usage.input_tokens,
                                                        "completion_tokens": call.usage.output_tokens})
    return json_response(message)


def _chunks_recording_usage(upstream, call: Call):
    """The upstream's OpenAI chunks as dicts; the usage chunk's counts are recorded on the call."""
    for item in upstream:
        chunk = item if isinstance(item, dict) else chunk_dict(item)
        if not isinstance(chunk, dict):
            continue
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int) \
                and isinstance(usage.get("completion_tokens"), int):
            call.usage = Usage(usage["prompt_tokens"], usage["completion_tokens"])
        yield chunk


def _input_tokens(usage: dict) -> int:
    """All input Anthropic counted: its input_tokens leaves out cache reads and writes."""
    names = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return sum(usage[name] for name in names if isinstance(usage.get(name), int))


def _estimated_usage(call: Call, message: dict) -> Usage:
    """Upstream reported no usage: about four characters per token, prompt and answer."""
    chars = 0
    for block in message.get("content") or ():
        if isinstance(block, dict):
            chars += len(block.get("text") or "")
            if "input" in block:
                chars += len(json.dumps(block["input"]))
    return Usage(pipeline.estimate_prompt_tokens(call.body), (chars + 3) // 4, estimated=True)


# --- the stream ----------------------------------------------------------------------------------

def encode_event(event: dict) -> bytes:
    """One Anthropic SSE event: an `event:` line naming the type, and the data."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.get('type')}\ndata: {data}\n\n".encode()


class AnthropicStreamEncoder(StreamEncoder):
    """Anthropic events to the client: `model` rewritten to the public id, usage recorded on the call
    (from the events themselves when the upstream is Anthropic), errors as an `error` event."""

    ping = encode_event({"type": "ping"})

    def __init__(self, call: Call, public_model: str, usage_in_events: bool):
        super().__init__(call)
        self.public_model = public_model
        self.usage_in_events = usage_in_events
        self.input_tokens = 0

    def encode(self, event: dict | bytes) -> bytes:
        if not isinstance(event, dict):
            event = chunk_dict(event)
            if not isinstance(event, dict):
                return b""
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            event["message"]["model"] = self.public_model
            usage = event["message"].get("usage")
            if self.usage_in_events and isinstance(usage, dict):
                self.input_tokens = _input_tokens(usage)
        elif kind == "content_block_delta":
            self.call.output_estimate += 1
        elif kind == "message_delta" and self.usage_in_events:
            usage = event.get("usage") or {}
            if isinstance(usage.get("input_tokens"), int):
                self.input_tokens = _input_tokens(usage)
            if isinstance(usage.get("output_tokens"), int):
                self.call.usage = Usage(self.input_tokens, usage["output_tokens"])
        return encode_event(event)

    def error(self, error: ApiError) -> bytes:
        return encode_event(anthropic_error_body(error.status, error.message, self.call.request_id))
