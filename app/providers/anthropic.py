"""Anthropic's native Messages API.

Two ways in:
- `request()`, the common provider interface: an OpenAI chat request is translated to a Messages request
  and the answer back to OpenAI (so an OpenAI client can use a Claude model);
- `messages()`, for the gateway's own /v1/messages: an Anthropic request goes upstream as it is (with the
  client's `anthropic-beta` header when the connection allows it, see passthrough.py), and the answer
  comes back as an Anthropic message or as parsed Anthropic stream events.

The connection's base URL is the host (`https://api.anthropic.com`) or the same with `/v1`.
"""
from __future__ import annotations

import json

from app.providers import passthrough
from app.providers.base import (
    IteratorStream,
    Provider,
    UpstreamError,
    UpstreamTarget,
    unsupported,
    upstream_error,
    upstream_failed,
    upstream_timeout,
    upstream_unavailable,
)
from app.providers.openai_compatible import OpenAIEventStream
from app.providers.sse_reader import iter_sse
from app.providers.transport_errors import TransportError
from app.providers.upstream_errors import from_stream_read_error, scrub
from app.wire.anthropic_to_openai import (
    UpstreamStreamError,
    anthropic_response_to_openai,
    anthropic_stream_to_openai_chunks,
)
from app.wire.openai_to_anthropic import openai_request_to_anthropic
from app.wire.shared import TranslationError

ANTHROPIC_VERSION = "2023-06-01"  # the Messages API version this adapter speaks upstream


def messages_url(target: UpstreamTarget) -> str:
    base = target.base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def stream_failure(error_type: str | None, message: str) -> UpstreamError:
    """An `error` event of an Anthropic stream as the failure the client gets."""
    text = f"The upstream model server failed: {message}"
    if error_type == "overloaded_error":
        return upstream_unavailable(f"The upstream model server is overloaded: {message}")
    if error_type == "timeout_error":
        return upstream_timeout(text)
    if error_type == "rate_limit_error":
        return upstream_error(429, "rate_limit_exceeded",
                             f"The upstream model server is rate limited: {message}",
                             error_type="rate_limit_error", retry_after=1)
    return upstream_failed(text)


class AnthropicProvider(Provider):
    kind = "anthropic"

    def headers(self, target: UpstreamTarget, beta: str | None = None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        if beta:
            headers["anthropic-beta"] = beta
        return headers

    def request(self, target: UpstreamTarget, endpoint: str, body: dict, stream: bool):
        """An OpenAI chat request through the Messages API; the answer in OpenAI's shape."""
        if endpoint != "chat":
            raise unsupported(endpoint, self.kind)
        try:
            payload = openai_request_to_anthropic(body)
        except TranslationError as exc:
            raise upstream_error(400, "invalid_request", exc.message, error_type="invalid_request_error",
                                param=exc.param) from None
        result = self.messages(target, payload, stream)
        if not stream:
            return anthropic_response_to_openai(result, model=body.get("model"))
        return IteratorStream(_openai_chunks(result, target, body.get("model")), on_close=result.close)

    def messages(self, target: UpstreamTarget, body: dict, stream: bool, beta: str | None = None):
        """A Messages request as it is: an Anthropic message, or an AnthropicEventStream when streaming."""
        payload, beta = passthrough.anthropic_request(target, body, beta)
        payload = dict(payload)
        if stream:
            payload["stream"] = True
        else:
            payload.pop("stream", None)
        headers = self.headers(target, beta)
        if stream:
            headers["Accept"] = "text/event-stream"
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        response = self.transport.send(target, messages_url(target), data, headers)
        if stream:
            return AnthropicEventStream(response, target)
        message = self.transport.read_json(response, target)
        if message.get("type") == "error":
            error = message.get("error") or {}
            raise stream_failure(error.get("type"), scrub(target, str(error.get("message") or "error")))
        return message

    def close(self) -> None:
        self.transport.close()


def _openai_chunks(events, target: UpstreamTarget, model: str | None):
    try:
        yield from anthropic_stream_to_openai_chunks(events, model=model)
    except UpstreamStreamError as exc:
        raise stream_failure(exc.error_type, scrub(target, exc.message)) from None


class AnthropicEventStream(OpenAIEventStream):
    """The events of an Anthropic SSE response, parsed, up to and including `message_stop`.

    `ping` events are dropped (the gateway keeps the client's connection alive itself); an `error` event,
    malformed data or an end before `message_stop` raise UpstreamError. Read through a pump greenlet
    (not `poll_events`): the translation to OpenAI chunks is a generator over this iterator."""

    pollable = False

    def __iter__(self):
        chunks = self._chunks()
        try:
            for _name, data in iter_sse(chunks, self._response.limits.event):
                try:
                    event = json.loads(data)
                except ValueError:
                    raise upstream_failed("The upstream model server sent malformed stream data.") from None
                kind = event.get("type") if isinstance(event, dict) else None
                if kind == "ping":
                    continue
                if kind == "error":
                    error = event.get("error") or {}
                    raise stream_failure(error.get("type"), scrub(self._target, str(error.get("message"))))
                yield event
                if kind == "message_stop":
                    self._complete = True
                    return
        except (TransportError, OSError) as exc:
            raise from_stream_read_error(exc) from None
        raise upstream_failed("The upstream model server ended the stream early.")
