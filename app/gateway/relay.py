"""Relaying an upstream stream to the client as Server-Sent Events.

The relay waits for upstream events with a timeout: it passes on at once, in one write, whatever has
arrived, sends `: ping` comments after PFORTE_STREAM_PING_SECONDS of silence, notices within half a second
when the client has gone (then closes the upstream at once), enforces the connection's total time
limit, and ends the stream when its key is revoked or disabled (key_watch). An upstream failure before
the first event is an ordinary JSON error; after it, one error frame ends the stream. Usage is settled in
`finally`, whatever happened.

How events are written is up to an encoder (`StreamEncoder`): OpenAI chunks in openai_stream, Anthropic
events in the messages module.
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

from flask import Response
from gevent.monkey import get_original

from app.api_errors import ApiError
from app.gateway.errors import internal_error, key_ended, stream_error_frame
from app.gateway.key_watch import KeyWatch, key_watch
from app.gateway.pipeline import settle
from app.gateway.stream_sources import END, DirectSource, Failure, Pump, event_source, first_events
from app.providers.base import UpstreamStream, Usage, upstream_timeout

log = logging.getLogger(__name__)

CLIENT_CHECK_SECONDS = 0.5
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"


class StreamEncoder:
    """Turns upstream events into bytes for the client, one wire shape per subclass.

    The relay calls, in order: `encode(event)` for each upstream event (a dict, or the raw JSON bytes of
    one `data:` payload), then exactly one of `end()` (the stream finished normally) or `error(error)`
    (it failed or timed out: one error frame, the last bytes sent). It writes `ping` during silences.
    Each call returns the bytes to send (b"" for nothing). A subclass implements `encode`, usually `end`,
    and records the token counts it sees on `call.usage` (`record_usage` takes an OpenAI usage object).
    """

    ping = b": ping\n\n"

    def __init__(self, call):
        self.call = call

    def encode(self, event: dict | bytes) -> bytes:
        """Bytes for one upstream event."""
        raise NotImplementedError

    def end(self) -> bytes:
        """Bytes after the last event of a stream that finished normally."""
        return b""

    def error(self, error: ApiError) -> bytes:
        """The frame that ends a stream that failed after it began (OpenAI's error shape by default)."""
        return stream_error_frame(error)

    def record_usage(self, usage: dict) -> None:
        """Take token counts from an OpenAI `usage` object."""
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            self.call.usage = Usage(prompt, completion)


_poll = get_original("select", "poll")
_POLL_MASK = 0x001 | 0x008 | 0x010  # POLLIN | POLLERR | POLLHUP


class ClientWatch:
    """Tells whether the client closed its connection (checked only while the upstream is silent)."""

    def __init__(self, environ):
        try:
            self.fd = environ["wsgi.input"].rfile.fileno()
        except (KeyError, AttributeError, OSError, ValueError):
            self.fd = None

    def gone(self) -> bool:
        if self.fd is None:
            return False
        try:
            # poll(), not select(): select() refuses descriptors above 1023, which a process holding
            # thousands of streams has. The original poll with timeout 0 never blocks.
            poller = _poll()
            poller.register(self.fd, _POLL_MASK)
            if not poller.poll(0):
                return False
            with socket.fromfd(self.fd, socket.AF_INET, socket.SOCK_STREAM) as sock:
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


def relay(call, pump: DirectSource | Pump, encoder: StreamEncoder, first: list, *, ping_seconds: float,
          total_seconds: float, client: ClientWatch, settle, keys: KeyWatch | None = None,
          release=None) -> Iterator[bytes]:
    """The response body of a stream. Settles the call when it ends, however it ends; ends it with an error
    frame when `keys` finds the call's key revoked or disabled (then calls `release`)."""
    deadline = call.started + total_seconds
    tick = min(CLIENT_CHECK_SECONDS, ping_seconds)
    last_write = call.started  # nothing sent yet: the first silence ping is due ping_seconds after the start
    items = first
    key_id = call.key.id if keys is not None else None
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                error = upstream_timeout()
                call.fail(error)
                yield encoder.error(error)
                return
            if keys is not None and (status := keys.ended_since(key_id, call.started)):
                error = key_ended(status)
                call.fail(error)
                yield encoder.error(error)
                return
            if not items:
                if client.gone():
                    _client_gone(call)
                    return
                if now - last_write >= ping_seconds:
                    last_write = now
                    yield encoder.ping
            else:
                out, finished = [], False
                for item in items:
                    if item is END:
                        out.append(encoder.end())
                        finished = True
                        break
                    if isinstance(item, Failure):
                        call.fail(item.error)
                        out.append(encoder.error(item.error))
                        finished = True
                        break
                    out.append(encoder.encode(item))
                data = b"".join(out)
                if data:
                    call.mark_first_byte()
                    last_write = now
                    yield data
                if finished:
                    return
            items = pump.take(tick)
    except GeneratorExit:
        _client_gone(call)
        raise
    except Exception:  # a bug of ours after the stream began: one error frame, details in the log
        log.exception("request %s: relaying the stream failed", call.request_id)
        error = internal_error()
        call.fail(error)
        yield encoder.error(error)
    finally:
        pump.close()
        if release is not None:
            release()
        settle(call)


def _client_gone(call) -> None:
    if call.status < 400:
        call.status = 499
        call.error_code = "client_disconnected"


def open_stream(call, upstream: UpstreamStream, encoder: StreamEncoder) -> Response:
    """Step 9 for streams: wait briefly for the first events (so that an immediate failure is a plain JSON
    error with its status), then answer 200 with a body that relays the rest and settles at its end."""
    ping = float(call.app.config.get("PFORTE_STREAM_PING_SECONDS", 15))
    pump = event_source(upstream, call.request_id)
    try:
        first = first_events(pump, ping)
    except BaseException:
        pump.close()
        raise
    keys = key_watch(call.app)
    release = keys.watch(call.key.id)
    body = relay(call, pump, encoder, first, ping_seconds=ping, total_seconds=call.model.target.total_timeout,
                 client=ClientWatch(call.environ), settle=settle, keys=keys, release=release)
    call.handed_off = True
    return Response(StreamBody(body, lambda: (pump.close(), release(), settle(call))), status=200,
                    headers=STREAM_HEADERS, content_type=STREAM_CONTENT_TYPE)


class StreamBody:
    """The response iterable: closing it before the first chunk still closes the upstream and settles."""

    __slots__ = ("_body", "_started", "_abandon")

    def __init__(self, body: Iterator[bytes], abandon):
        self._body = body
        self._started = False
        self._abandon = abandon

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        self._started = True
        return next(self._body)

    def close(self) -> None:
        if self._started:
            self._body.close()
        elif self._abandon is not None:
            abandon, self._abandon = self._abandon, None
            abandon()
