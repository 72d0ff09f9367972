"""Relaying an upstream stream to the client as Server-Sent Events (compat.md §2).

The relay waits for upstream events with a timeout: it passes on at once, in one write, whatever has
arrived, sends `: ping` comments after PFORTE_STREAM_PING_SECONDS of silence, notices within half a second
when the client has gone (then closes the upstream at once), and enforces the connection's total time
limit. OpenAI-style upstreams are read in the request's own greenlet (`DirectSource`: their streams wait
on the socket with a timeout); other streams are iterators, read in a greenlet of their own (`Pump`).
An upstream failure before the first event is an ordinary JSON error; after it, one error frame ends the
stream. Usage is settled in `finally`, whatever happened.

How events are written is up to an encoder (`StreamEncoder`): OpenAI chunks here, Anthropic events in
the messages module.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator

import gevent
from flask import Response
from gevent.monkey import get_original
from gevent.queue import Empty, Queue

from app.api_errors import ApiError
from app.gateway.errors import internal_error, stream_error_frame
from app.gateway.pipeline import estimate_prompt_tokens, settle
from app.providers.base import UpstreamError, UpstreamStream, Usage, upstream_failed, upstream_timeout

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
CLIENT_CHECK_SECONDS = 0.5
QUEUE_SIZE = 256
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"


class _End:
    """The upstream stream finished normally."""


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: ApiError):
        self.error = error


END = _End()


def _failure(exc: Exception, log_extra: dict) -> _Failure:
    """A failure while reading the upstream stream, logged, as the relay passes it on."""
    if isinstance(exc, UpstreamError):
        log.error("the upstream stream failed", extra={**log_extra, "fields": {"status": exc.status,
                                                                               "error": exc.code}})
        return _Failure(exc)
    log.exception("reading the upstream stream failed", extra=log_extra)
    return _Failure(upstream_failed())


class Pump:
    """Reads an UpstreamStream in a greenlet into a bounded queue (a slow client slows the upstream read)."""

    def __init__(self, stream: UpstreamStream, request_id: str | None = None):
        self.stream = stream
        # the greenlet runs outside the request context: its log lines name the request explicitly
        self.log_extra = {"request_id": request_id}
        self.queue: Queue = Queue(QUEUE_SIZE)
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        put = self.queue.put
        try:
            for event in self.stream:
                put(event)
            put(END)
        except Exception as exc:
            put(_failure(exc, self.log_extra))

    def take(self, timeout: float) -> list:
        """The events available now, waiting up to `timeout` for the first; [] when the upstream was silent."""
        try:
            items = [self.queue.get(timeout=timeout)]
        except Empty:
            return []
        get = self.queue.get_nowait
        try:
            while True:
                items.append(get())
        except Empty:
            return items

    def close(self) -> None:
        """Stop reading and close the upstream request (aborting it when unfinished)."""
        self.greenlet.kill(block=True, timeout=1)
        try:
            self.stream.close()
        except Exception:
            log.exception("closing the upstream stream failed", extra=self.log_extra)


class DirectSource:
    """The same as a Pump for streams that can wait for events themselves (`poll_events`): no greenlet
    and no queue, and a slow client slows the upstream read by itself."""

    __slots__ = ("stream", "log_extra", "ended")

    def __init__(self, stream: UpstreamStream, request_id: str | None = None):
        self.stream = stream
        self.log_extra = {"request_id": request_id}
        self.ended = False

    def take(self, timeout: float) -> list:
        """The events available now, waiting up to `timeout` for the first; [] when the upstream was silent."""
        if self.ended:
            return []
        deadline = time.perf_counter() + timeout
        poll = self.stream.poll_events
        try:
            while True:
                batch = poll(timeout)
                if batch is not None:
                    events, finished = batch
                    if finished:
                        self.ended = True
                        events.append(END)
                        return events
                    if events:
                        return events
                timeout = deadline - time.perf_counter()
                if batch is None or timeout <= 0:
                    return []
        except Exception as exc:
            self.ended = True
            return [_failure(exc, self.log_extra)]

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:
            log.exception("closing the upstream stream failed", extra=self.log_extra)


def event_source(stream: UpstreamStream, request_id: str | None = None) -> DirectSource | Pump:
    """Where the relay takes a stream's events from."""
    if getattr(stream, "pollable", False):
        return DirectSource(stream, request_id)
    return Pump(stream, request_id)


class StreamEncoder:
    """Turns upstream events into bytes for the client. Subclasses record usage on `call`."""

    ping = b": ping\n\n"

    def __init__(self, call):
        self.call = call

    def encode(self, event: dict | bytes) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        """Bytes after the last event of a stream that finished normally."""
        return b""

    def error(self, error: ApiError) -> bytes:
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


def first_events(pump: DirectSource | Pump, wait: float) -> list:
    """Wait up to `wait` seconds for the stream's first events; raise its error if it failed at once."""
    items = pump.take(wait)
    if items and isinstance(items[0], _Failure):
        raise items[0].error
    return items


def relay(call, pump: DirectSource | Pump, encoder: StreamEncoder, first: list, *, ping_seconds: float,
          total_seconds: float, client: ClientWatch, settle) -> Iterator[bytes]:
    """The response body of a stream. Settles the call when it ends, however it ends."""
    deadline = call.started + total_seconds
    tick = min(CLIENT_CHECK_SECONDS, ping_seconds)
    last_write = call.started  # nothing sent yet: the first silence ping is due ping_seconds after the start
    items = first
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                error = upstream_timeout()
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
                    if isinstance(item, _Failure):
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
    except Exception:  # a bug of ours after the stream began: one error frame (DESIGN §6), details in the log
        log.exception("request %s: relaying the stream failed", call.request_id)
        error = internal_error()
        call.fail(error)
        yield encoder.error(error)
    finally:
        pump.close()
        settle(call)


def _client_gone(call) -> None:
    if call.status < 400:
        call.status = 499
        call.error_code = "client_disconnected"


class OpenAIStreamEncoder(StreamEncoder):
    """OpenAI chunks: raw upstream payloads pass through with only `model` rewritten (a byte replace);
    the usage chunk is parsed for its counts and passed on only when the client asked for it."""

    def __init__(self, call, public_model: str, upstream_model: str, include_usage: bool):
        super().__init__(call)
        self.public_model = public_model
        self.include_usage = include_usage
        self.usage_sent = False
        self.head: dict | None = None  # id, object, created of the first chunk, for a usage chunk of our own
        self.first_raw: bytes | None = None  # the first raw chunk, parsed for `head` only when needed
        public = json.dumps(public_model).encode()
        upstream = json.dumps(upstream_model).encode()
        self.same_model = public == upstream
        self.replacements = ((b'"model":' + upstream, b'"model":' + public),
                             (b'"model": ' + upstream, b'"model": ' + public))

    def encode(self, event: dict | bytes) -> bytes:
        if isinstance(event, dict):
            return self._encode_dict(event)
        if self.first_raw is None:
            self.first_raw = event
        if b'"usage":{' in event or b'"usage": {' in event:
            return self._encode_dict(chunk_dict(event))
        if _carries_text(event):
            self.call.output_estimate += 1
        if not self.same_model:
            for old, new in self.replacements:
                if old in event:
                    event = event.replace(old, new, 1)
                    break
            else:
                if b'"model"' in event:
                    return self._encode_dict(chunk_dict(event))
        return b"data: " + event + b"\n\n"

    def _encode_dict(self, chunk: dict | None) -> bytes:
        if not isinstance(chunk, dict):
            return b""
        if self.head is None:
            self.head = {k: chunk[k] for k in ("id", "object", "created") if k in chunk}
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.record_usage(usage)
            if self.include_usage and self.call.usage is not None:
                chunk["usage"] = complete_usage(usage, self.call.usage)
                self.usage_sent = True
            else:  # not asked for, or without counts (then end() sends an estimate when asked for)
                if not chunk.get("choices"):
                    return b""
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
        else:
            self.call.output_estimate += _delta_count(chunk)
        if "model" in chunk:
            chunk["model"] = self.public_model
        return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    def end(self) -> bytes:
        if self.include_usage and not self.usage_sent:
            return self._own_usage_chunk() + DONE
        return DONE

    def _own_usage_chunk(self) -> bytes:
        """Upstream reported no usage but the client asked for it: send our estimate."""
        call = self.call
        usage = call.usage or Usage(estimate_prompt_tokens(call.body), call.output_estimate, estimated=True)
        call.usage = usage
        if self.head is None and self.first_raw is not None:
            first = chunk_dict(self.first_raw)
            if isinstance(first, dict):
                self.head = {k: first[k] for k in ("id", "object", "created") if k in first}
        head = self.head or {"id": "chatcmpl-" + call.request_id, "object": "chat.completion.chunk",
                             "created": int(time.time())}
        chunk = {**head, "model": self.public_model, "choices": [], "usage": usage_object(usage)}
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def usage_object(usage: Usage) -> dict:
    """An OpenAI usage object with both details objects (some clients crash without them)."""
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def complete_usage(usage: dict, counts: Usage) -> dict:
    """An upstream usage object with what it left out filled in: total_tokens and both details objects
    (compat.md §1, §7.7). The upstream's own fields win; `counts` are the tokens taken from it."""
    full = usage_object(counts)
    return {**full, **usage,
            "total_tokens": usage.get("total_tokens") if isinstance(usage.get("total_tokens"), int)
            else full["total_tokens"],
            "prompt_tokens_details": usage.get("prompt_tokens_details") or full["prompt_tokens_details"],
            "completion_tokens_details": usage.get("completion_tokens_details")
            or full["completion_tokens_details"]}


def chunk_dict(data: bytes):
    """A raw `data:` payload as a dict (None when it is not JSON)."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def _carries_text(event: bytes) -> bool:
    return (b'"content":"' in event and b'"content":""' not in event) or b'"arguments":"' in event \
        or b'"text":"' in event


def _delta_count(chunk: dict) -> int:
    """1 when a chunk carries generated text or tool-call arguments (an estimate of one token)."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if choice.get("text") or delta.get("content") or delta.get("tool_calls"):
            return 1
    return 0


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
    body = relay(call, pump, encoder, first, ping_seconds=ping, total_seconds=call.model.target.total_timeout,
                 client=ClientWatch(call.environ), settle=settle)
    call.handed_off = True
    return Response(StreamBody(body, lambda: (pump.close(), settle(call))), status=200, headers=STREAM_HEADERS,
                    content_type=STREAM_CONTENT_TYPE)


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
