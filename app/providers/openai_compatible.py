"""OpenAI-style upstreams: OpenAI itself, vLLM, Ollama's /v1, llama.cpp server, LocalAI, Mistral, …

The connection's base URL is what an OpenAI SDK would get as base_url (usually ending in /v1).
Streams are relayed as raw `data:` payloads without decoding them (see UpstreamStream).
"""
from __future__ import annotations

import json

import gevent
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from app.catalog.entries import UpstreamTarget
from app.providers.base import Provider, UpstreamError, UpstreamStream, upstream_failed, upstream_timeout
from app.providers.sse_reader import iter_sse
from app.providers.transport import HttpTransport, Response, _abort, scrub

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
    """The `data:` payloads of an OpenAI-style SSE response, as raw bytes, up to (not including) [DONE]."""

    def __init__(self, response: Response, target: UpstreamTarget):
        self._response = response
        self._target = target
        self._complete = False
        self._closed = False

    def _chunks(self):
        return self._response.iter_chunks()

    def __iter__(self):
        chunks = self._chunks()
        try:
            for _event, data in iter_sse(chunks):
                if data.startswith(b"[DONE]"):
                    self._drain(chunks)
                    return
                if data.startswith(b'{"error"'):
                    raise self._stream_error(data)
                if data[:1] != b"{" or data[-1:] != b"}":  # a cheap check that catches cut-off chunks
                    data = data.strip()
                    if data[:1] != b"{" or data[-1:] != b"}":
                        raise upstream_failed("The upstream model server sent a malformed stream chunk.")
                yield data
            self._complete = True
        except ReadTimeoutError:
            raise upstream_timeout() from None
        except (ProtocolError, HTTPError, OSError):
            raise upstream_failed("The upstream model server broke off the stream.") from None

    def _drain(self, chunks) -> None:
        """Read the end of the body (normally already here) so the connection can be reused."""
        with gevent.Timeout(DRAIN_SECONDS, False):
            for _ in chunks:
                pass
            self._complete = True

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
            self._response.release_conn()
        else:
            _abort(self._response)
