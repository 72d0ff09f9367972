"""The gevent WSGI server behind `pforte serve`. Monkey-patching happens in app.entry before import.

Graceful shutdown: on SIGTERM (or SIGINT) the server closes its listening socket, closes idle keep-alive
connections, answers running requests with `Connection: close` and waits up to
PFORTE_SHUTDOWN_GRACE_SECONDS for them (streams included) to finish. Requests still running then are
cancelled; their `finally` blocks settle usage before the process exits. A second signal cancels at once.

Connections are bounded in time and number (docs/operations.md, "Connections and timeouts"):
- PFORTE_HEADER_TIMEOUT_SECONDS: the whole head of a request (request line and headers) must arrive within
  it, counted from the connection's start or, on a kept-alive connection, from the request's first byte;
  else 408 and close.
- PFORTE_IDLE_TIMEOUT_SECONDS: a kept-alive connection waiting for its next request is closed after it.
- PFORTE_WRITE_TIMEOUT_SECONDS: every read of a request body and every write of an answer must finish
  within it. A streaming client that stops reading is cut off; closing the answer's body closes the
  upstream, releases the concurrency slot and settles the request (499 client_disconnected).
- PFORTE_MAX_CONNECTIONS: a connection beyond it is answered 503 (OpenAI error shape, Retry-After) and
  closed.
"""
from __future__ import annotations

import gc
import json
import logging
import signal
import socket
import sys
import time

import gevent
from flask import Flask
from gevent import Timeout, get_hub, getcurrent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from app.api_errors import ApiError
from app.config import DEFAULTS
from app.conversations import service as conversations
from app.extensions import db
from app.gateway.errors import openai_error_body, response_headers
from app.ops.instance_lock import InstanceBusy, hold_serving_lock
from app.ops.logs import configure_logging
from app.ops.wal import start_wal_checkpoints
from app.request_headers import parse_request_headers
from app.usage.retention import start_daily_purge

log = logging.getLogger("pforte.server")

# Purged with the request log once a day: stored conversations past their retention.
DAILY_PURGES = (("conversations", conversations.purge_expired),)

# The settings that bound connections (app.config keys without PFORTE_).
LIMITS = ("HEADER_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS", "WRITE_TIMEOUT_SECONDS", "MAX_CONNECTIONS")

# Handlers cancelled after the grace period get this long to run their clean-up (usage settlement).
CANCEL_CLEANUP_SECONDS = 10


# Connections beyond PFORTE_MAX_CONNECTIONS that may be being refused at the same time; beyond these, new
# connections wait in the listen backlog until one is answered.
REFUSING = 256
# How long a refused connection gets to take its 503 (and have its request read and dropped).
REFUSE_SECONDS = 2
BUSY_RETRY_AFTER = 1
# What of a refused body (413) is still read, so that a client still sending sees the answer, not a reset.
LINGER_BYTES = 1 << 20
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def busy_answer() -> bytes:
    """The raw 503 for a connection over the cap, in the OpenAI error shape."""
    error = ApiError(503, "server_error", "server_busy", "The server has too many open connections right now. "
                     "Try again in a moment.", retry_after=BUSY_RETRY_AFTER)
    body = json.dumps(openai_error_body(error)).encode()
    head = [b"HTTP/1.1 503 Service Unavailable", b"Content-Type: application/json",
            b"Content-Length: %d" % len(body), b"Connection: close"]
    head += [f"{name}: {value}".encode("latin-1") for name, value in response_headers(error).items()]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class Deadline(BaseException):
    """A timer to arm and disarm again and again (a gevent Timeout, restarted, only runs out the time it had
    left): armed, it throws itself into the greenlet that armed it after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"no progress for {seconds:g} s")
        self.timer = get_hub().loop.timer(seconds, seconds)

    def arm(self) -> None:
        self.timer.again(getcurrent().throw, self)

    def disarm(self) -> None:
        self.timer.stop()

    def close(self) -> None:
        self.timer.stop()
        self.timer.close()


class DrainingHandler(WSGIHandler):
    """Knows whether it waits for the next request on a kept-alive connection, so shutdown can close it;
    bounds the time a request's head, an idle connection and each read or write may take."""

    idle = False
    served = False  # a request was read on this connection: waiting for the next one is idling
    head_timer: Deadline | None = None
    idle_timer: Deadline | None = None
    MessageClass = staticmethod(parse_request_headers)  # pywsgi's own goes through the email package

    def handle(self):
        # pywsgi writes a response's head and body (and each streamed event) separately; with Nagle's
        # algorithm the second write waits for the client's delayed ACK, about 40 ms on Linux.
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not a TCP socket
        server = self.server
        if len(server.handlers) >= server.max_connections:
            self.refuse()
            return
        server.handlers.add(self)
        try:
            super().handle()
        finally:
            server.handlers.discard(self)
            for timer in (self.head_timer, self.idle_timer):
                if timer is not None:
                    timer.close()

    def refuse(self) -> None:
        """Answer 503 and close. What the client sent is read (for REFUSE_SECONDS at most) before the
        close, so that it sees the answer instead of a connection reset."""
        sock = self.socket
        with Timeout(REFUSE_SECONDS, False):
            try:
                sock.sendall(self.server.busy)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        self.rfile.close()  # the descriptor closes with the last of the socket and its file
        sock.close()

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        except Deadline as exc:
            if exc is not self.head_timer:
                raise
            try:  # the head did not arrive in time
                self.socket.settimeout(1)
                self.socket.sendall(TIMED_OUT)
            except OSError:
                pass
            return None
        finally:
            if self.head_timer is not None:
                self.head_timer.disarm()

    def read_requestline(self):
        if self.server.draining:
            return ""
        self.idle = True
        try:
            self.socket.settimeout(None)  # the head is timed as a whole, below
            if self.served and not self._next_request_begins():
                return ""
            if self.head_timer is None:
                self.head_timer = Deadline(self.server.header_timeout)
            self.head_timer.arm()
            return super().read_requestline()
        finally:
            self.idle = False

    def _next_request_begins(self) -> bool:
        """Wait up to the idle timeout for the first byte of the next request on a kept-alive connection."""
        if self.idle_timer is None:
            self.idle_timer = Deadline(self.server.idle_timeout)
        self.idle_timer.arm()
        try:
            return bool(self.rfile.peek(1))
        except Deadline as exc:
            if exc is not self.idle_timer:
                raise
            return False
        except OSError:
            return False
        finally:
            self.idle_timer.disarm()

    def read_request(self, raw_requestline):
        try:
            return super().read_request(raw_requestline)
        finally:
            self.head_timer.disarm()
            self.served = True
            self.socket.settimeout(self.server.write_timeout)  # body reads and answer writes, each

    def handle_error(self, t, v, tb):
        if isinstance(v, TimeoutError):  # the client did not read the answer (or send the body) in time
            log.info("closed a connection from %s: no progress for %.0f s", self.client_address[0],
                     self.server.write_timeout)
            self.close_connection = True
            return
        super().handle_error(t, v, tb)

    def log_request(self):
        pass  # pywsgi would format a line for its (disabled) log; app.ops.observe writes the access log

    def start_response(self, status, headers, exc_info=None):
        too_large = status[:3] == "413"
        if too_large:  # pywsgi would read the rest of the body: read at most LINGER_BYTES of it, then close
            body = self.wsgi_input
            if body.chunked_input:
                body.chunked_input = False
            elif body.content_length:
                body.content_length = min(body.content_length, body.position + LINGER_BYTES)
        if self.server.draining or too_large:
            self.close_connection = True
            if not any(name.lower() == "connection" for name, _ in headers):
                headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)


class DrainingServer(WSGIServer):
    handler_class = DrainingHandler

    def __init__(self, *args, limits: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.handlers: set[DrainingHandler] = set()
        self.draining = False
        limits = {**{name: DEFAULTS[name] for name in LIMITS}, **(limits or {})}
        self.header_timeout = float(limits["HEADER_TIMEOUT_SECONDS"])
        self.idle_timeout = float(limits["IDLE_TIMEOUT_SECONDS"])
        self.write_timeout = float(limits["WRITE_TIMEOUT_SECONDS"])
        self.max_connections = int(limits["MAX_CONNECTIONS"])
        self.busy = busy_answer()

    def drain(self, grace: float, cancel_now) -> None:
        """Stop accepting, then wait up to grace seconds (or until cancel_now is set) for running requests."""
        self.close()
        self.draining = True
        for handler in list(self.handlers):
            if handler.idle and getattr(handler, "socket", None) is not None:
                try:
                    handler.socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        started = time.monotonic()
        running = len(self.pool)
        if running:
            log.info("shutting down: waiting up to %.0f s for %d open request(s)", grace, running)
            joiner = gevent.spawn(self.pool.join, timeout=grace)
            gevent.wait([joiner, cancel_now], count=1)
            joiner.kill()
        if len(self.pool):
            log.warning("shutting down: cancelling %d request(s) still open after %.1f s",
                        len(self.pool), time.monotonic() - started)
            self.pool.kill(block=True, timeout=CANCEL_CLEANUP_SECONDS)


def serve(app: Flask, host: str | None = None, port: int | None = None) -> None:
    configure_logging(json_lines=bool(app.config.get("PFORTE_LOG_JSON")))
    host = host or app.config["PFORTE_HOST"]
    port = int(port or app.config["PFORTE_PORT"])
    grace = float(app.config.get("PFORTE_SHUTDOWN_GRACE_SECONDS", 30))
    try:
        lock = hold_serving_lock(app.instance_path)
    except InstanceBusy as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None

    limits = {name: app.config[f"PFORTE_{name}"] for name in LIMITS}
    server = DrainingServer((host, port), app, spawn=Pool(limits["MAX_CONNECTIONS"] + REFUSING), log=None,
                            error_log=log, limits=limits)
    stop_requested = Event()
    cancel_now = Event()

    def on_signal(*_args):
        if stop_requested.is_set():
            cancel_now.set()
        stop_requested.set()

    gevent.signal_handler(signal.SIGTERM, on_signal)
    gevent.signal_handler(signal.SIGINT, on_signal)
    with app.app_context():
        checkpoints = start_wal_checkpoints(db.engine)  # before the first request opens a connection
    gc.collect()
    gc.freeze()  # what start-up made lives for ever: full collections need not walk it (shorter pauses)
    server.start()
    purge = start_daily_purge(app, also=DAILY_PURGES)  # request-log and conversation retention, once a day
    log.info("Pforte listening on http://%s:%s/", f"[{host}]" if ":" in host else host, port)
    stop_requested.wait()
    purge.kill(block=False)
    server.drain(grace, cancel_now)
    if checkpoints is not None:
        checkpoints.kill()
    with app.app_context():
        db.engine.dispose()
    lock.close()
    log.info("stopped")
