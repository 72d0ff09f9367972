"""OpenAI-style upstreams: OpenAI itself, vLLM, Ollama's /v1, llama.cpp server, LocalAI, Mistral, …

The connection's base URL is what an OpenAI SDK would get as base_url (usually ending in /v1).
Streams are relayed as raw `data:` payloads without decoding them (see UpstreamStream).
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
from app.providers.transport_errors import AnswerTooLarge, ReadTimedOut, TransportError
from app.providers.upstream_errors import scrub

PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
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
        if self._failure is not None:
            raise self._failure
        try:
            data = self._response.poll(timeout)
        except ReadTimedOut:
            raise upstream_timeout() from None
        except AnswerTooLarge as exc:
            raise upstream_failed(exc.message) from None
        except (TransportError, OSError):
            raise upstream_failed("The upstream model server broke off the stream.") from None
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
