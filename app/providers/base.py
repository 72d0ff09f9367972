"""The small interface every upstream kind implements. No Flask and no database here.

A provider takes an OpenAI-shaped request dict (the `model` already set to the upstream model name) and
returns either an OpenAI-shaped response dict or, for streams, an `UpstreamStream`: an iterator of
OpenAI chunk events, each either a dict or the raw JSON bytes of one SSE `data:` line (the fast path of
OpenAI-style upstreams, so that chunks need not be decoded and re-encoded). Failures are raised as
`UpstreamError` (an `app.api_errors.ApiError`), already classified as the answer the client gets.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.api_errors import ApiError

# What the gateway may ask of a provider; each maps to the OpenAI path of the same name ("responses" only
# of OpenAI-style and Azure upstreams whose connection says they offer it).
ENDPOINTS = ("chat", "completions", "embeddings", "responses")


@dataclass(frozen=True)
class UpstreamTarget:
    """Everything a provider adapter needs to reach one upstream connection."""

    connection_id: int
    name: str
    kind: str  # openai | azure | anthropic | demo
    base_url: str
    api_key: str | None  # decrypted credential, kept only in memory
    api_version: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    total_timeout: float = 600.0
    responses_api: bool = False  # the upstream offers POST /responses itself (openai and azure kinds)
    allow_link_local: bool = False  # PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS (see app/providers/addresses.py)
    allow_passthrough: bool = False  # paid or storing request options may go upstream (passthrough.py)


# Upstream failures are ApiErrors like every other refusal; the name says where they come from.
UpstreamError = ApiError


def upstream_error(status: int, code: str | None, message: str, error_type: str = "server_error",
                   param: str | None = None, retry_after: int | None = None, retryable: bool = True) -> ApiError:
    """An upstream failure as the client will see it."""
    return ApiError(status, error_type, code, message, param=param, retry_after=retry_after, retryable=retryable)


def upstream_failed(message: str = "The upstream model server failed.", retryable: bool = True) -> UpstreamError:
    return upstream_error(502, "upstream_error", message, retryable=retryable)


def upstream_unavailable(message: str = "The upstream model server is unavailable.") -> UpstreamError:
    return upstream_error(503, "upstream_unavailable", message)


def upstream_timeout(message: str = "The upstream model server did not answer in time.") -> UpstreamError:
    return upstream_error(504, "upstream_timeout", message)


def unsupported(endpoint: str, kind: str) -> UpstreamError:
    return upstream_error(400, "invalid_request",
                         f"This model's connection ({kind}) does not offer the {endpoint} endpoint.",
                         error_type="invalid_request_error")


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False


class UpstreamStream:
    """An open upstream stream: iterate for events (dict or raw `data:` bytes); close() ends it early.

    Iteration ends after the last event; the `[DONE]` sentinel is not passed on (the gateway writes its
    own). Errors while iterating are raised as UpstreamError. A stream that is `pollable` can also wait
    for events itself, with a timeout (`poll_events`), so the relay needs no greenlet to read it."""

    pollable = False

    def __iter__(self) -> Iterator[dict | bytes]:
        raise NotImplementedError

    def poll_events(self, timeout: float) -> tuple[list, bool] | None:
        """The events that arrived within `timeout` seconds and whether the stream has ended (None when
        nothing arrived); only for `pollable` streams."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the upstream connection (abort it when the stream did not finish). Idempotent."""


class IteratorStream(UpstreamStream):
    """A stream over a plain iterator of events (providers that build chunks themselves)."""

    def __init__(self, events: Iterator[dict | bytes], on_close=None):
        self._events = events
        self._on_close = on_close

    def __iter__(self):
        return iter(self._events)

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close:
            close()
        if self._on_close:
            on_close, self._on_close = self._on_close, None
            on_close()


class Provider:
    """One upstream kind. Subclasses implement `request` (and may refuse endpoints they lack)."""

    kind = "base"

    def __init__(self, transport=None):
        self.transport = transport  # the shared HttpTransport, for adapters that talk HTTP

    def request(self, target: UpstreamTarget, endpoint: str, body: dict, stream: bool) -> dict | UpstreamStream:
        """Send one OpenAI-shaped request (`endpoint` in ENDPOINTS). Streams return once the upstream has
        accepted the request (status 2xx and headers received); errors before that raise UpstreamError."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop pooled connections (tests and shutdown)."""
