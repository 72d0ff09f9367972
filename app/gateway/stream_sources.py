"""Where the stream relay takes upstream events from.

OpenAI-style upstreams are read in the request's own greenlet (`DirectSource`: their streams wait on the
socket with a timeout); other streams are iterators, read in a greenlet of their own (`Pump`). Both hand
out lists of items: upstream events (dict or raw `data:` bytes), then `END` when the stream finished
normally or a `Failure` when it broke.
"""
from __future__ import annotations

import logging
import time

import gevent
from gevent.queue import Empty, Queue

from app.api_errors import ApiError
from app.providers.base import UpstreamError, UpstreamStream, upstream_failed

log = logging.getLogger(__name__)

QUEUE_SIZE = 256


class _End:
    """The upstream stream finished normally."""


class Failure:
    """The upstream stream broke; `error` is what the client is told."""

    __slots__ = ("error",)

    def __init__(self, error: ApiError):
        self.error = error


END = _End()


def _failure(exc: Exception, log_extra: dict) -> Failure:
    """A failure while reading the upstream stream, logged, as the relay passes it on."""
    if isinstance(exc, UpstreamError):
        log.error("the upstream stream failed", extra={**log_extra, "fields": {"status": exc.status,
                                                                               "error": exc.code}})
        return Failure(exc)
    log.exception("reading the upstream stream failed", extra=log_extra)
    return Failure(upstream_failed())


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


def first_events(pump: DirectSource | Pump, wait: float) -> list:
    """Wait up to `wait` seconds for the stream's first events; raise its error if it failed at once."""
    items = pump.take(wait)
    if items and isinstance(items[0], Failure):
        raise items[0].error
    return items
