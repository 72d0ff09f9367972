"""OpenAI-style upstreams: OpenAI itself, vLLM, Ollama's /v1, llama.cpp server, LocalAI, Mistral, …

The connection's base URL is what an OpenAI SDK would get as base_url (usually ending in /v1).
Streams are relayed as raw `data:` payloads without decoding them (see UpstreamStream); a stream of the
upstream's own Responses API (endpoint "responses") as whole SSE blocks (ResponsesEventStream).
"""
from __future__ import annotations

import json
import time

from app.providers import passthrough
from app.providers.base import (
    Provider,
    UpstreamError,
    UpstreamStream,
    UpstreamTarget,
    upstream_failed,
    upstream_timeout,
)
from app.providers.response import Response, abort, too_large
from app.providers.sse_reader import SseParser
from app.providers.transport import HttpTransport
from app.providers.transport_errors import TransportError
from app.providers.upstream_errors import from_stream_read_error, scrub

PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings",
         "responses": "/responses"}
DRAIN_SECONDS = 0.5  # after [DONE], how long the rest of the body may take before the connection is dropped


class OpenAICompatibleProvider(Provider):
    kind = "openai"

    transport: HttpTransport

    def url(self, target: UpstreamTarget, endpoint: str, model: str) -> str:
        return target.base_url.rstrip("/") + PATHS[endpoint]

    def headers(self, target: UpstreamTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    def request(self, target: UpstreamTarget, endpoint: str, body: dict, stream: bool):
        body = passthrough.openai_body(target, body)
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = self.headers(target)
        if stream:
            headers["Accept"] = "text/event-stream"
        url = self.url(target, endpoint, body.get("model") or "")
        response = self.transport.send(target, url, payload, headers)
        if not stream:
            return self.transport.read_json(response, target)
        if endpoint == "responses":
            return ResponsesEventStream(response, target)
        return OpenAIEventStream(response, target)

    def close(self) -> None:
        self.transport.close()


class OpenAIEventStream(UpstreamStream):
    """The `data:` payloads of an OpenAI-style SSE response, as raw bytes, up to (not including) [DONE].

    Read in the relay's own greenlet through `poll_events`, which waits with a timeout and loses nothing
    when it runs out; iterating reads the same way without a timeout of its own."""

    pollable = True

    def __init__(self, response: Response, target: UpstreamTarget):
        self._response = response
        self._target = target
        self._parser = SseParser(response.limits.event)
        self._failure: UpstreamError | None = None
        self._complete = False
        self._closed = False

    def _chunks(self):
        return self._response.iter_chunks()

    def __iter__(self):
        while True:
            batch = self.poll_events(self._target.read_timeout)
            if batch is None:
                raise upstream_timeout()
            events, finished = batch
            yield from events
            if finished:
                return

    def poll_events(self, timeout: float) -> tuple[list[bytes], bool] | None:
        """The payloads that arrived within `timeout` seconds and whether the stream has ended; None
        when nothing arrived. Raises UpstreamError, after the payloads that came before the failure."""
        data = self._read(timeout)
        if data is None:
            return None
        ended = self._response.done
        events = self._parser.feed(data) if data else []
        if ended:
            events += self._parser.close()
        payloads = []
        for _event, payload in events:
            if payload.startswith(b"[DONE]"):
                self._complete = True
                return payloads, True
            failure = None
            if payload.startswith(b'{"error"'):
                failure = self._stream_error(payload)
            elif payload[:1] != b"{" or payload[-1:] != b"}":  # a cheap check that catches cut-off chunks
                payload = payload.strip()
                if payload[:1] != b"{" or payload[-1:] != b"}":
                    failure = upstream_failed("The upstream model server sent a malformed stream chunk.")
            if failure is not None:
                if not payloads:
                    raise failure
                self._failure = failure  # the events before it go out first
                return payloads, False
            payloads.append(payload)
        if self._parser.overflow:
            failure = upstream_failed(too_large("a stream event", self._parser.max_event).message)
            if not payloads:
                raise failure
            self._failure = failure
            return payloads, False
        if ended:
            self._complete = True
        return payloads, ended

    def _read(self, timeout: float) -> bytes | None:
        """Body bytes that arrived within `timeout` seconds (None: nothing); b"" once the body ended. Raises
        the failure held back for after the events before it, and read errors as UpstreamError."""
        if self._failure is not None:
            raise self._failure
        try:
            return self._response.poll(timeout)
        except (TransportError, OSError) as exc:
            raise from_stream_read_error(exc) from None

    def _drain(self) -> None:
        """Read the end of the body after [DONE] (normally already here) so the connection can be reused."""
        deadline = time.monotonic() + DRAIN_SECONDS
        response = self._response
        try:
            while not response.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or response.poll(remaining) is None:
                    return
        except (TransportError, OSError):
            return

    def _stream_error(self, data: bytes) -> UpstreamError:
        try:
            error = json.loads(data).get("error") or {}
        except ValueError:
            error = {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        return upstream_failed(scrub(self._target, f"The upstream model server failed: {message or 'error'}"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._complete:
            self._drain()
            self._response.release_conn()
        else:
            abort(self._response)


class ResponsesEventStream(OpenAIEventStream):
    """The events of an upstream's own Responses stream, each as the bytes of its whole SSE block (its
    `event:` and `data:` lines and the blank line after it), to be passed on unchanged; CRLF line ends
    become LF. Blocks without data (comments, keep-alives) are left out, the relay pings by itself; a
    `data: [DONE]` ends the stream and is not passed on. Failures inside the stream (`response.failed`,
    `error` events) are events like the others: the gateway reads them."""

    def __init__(self, response: Response, target: UpstreamTarget):
        super().__init__(response, target)
        self._buffer = b""

    def poll_events(self, timeout: float) -> tuple[list[bytes], bool] | None:
        data = self._read(timeout)
        if data is None:
            return None
        ended = self._response.done
        buffer = self._buffer + data
        if b"\r" in buffer:
            if buffer.endswith(b"\r") and not ended:  # the \n of a CRLF may still be on its way
                self._buffer = buffer
                return [], False
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buffer.split(b"\n\n")
        self._buffer = b"" if ended else blocks.pop()
        events = []
        for block in blocks:
            block = block.strip(b"\n")
            if block.startswith(b"data: [DONE]") or block.endswith(b"\ndata: [DONE]"):
                self._complete = True
                return events, True
            if block.startswith(b"data:") or b"\ndata:" in block:
                events.append(block + b"\n\n")
        if ended:
            self._complete = True
        return events, ended
