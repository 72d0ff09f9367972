"""The gevent WSGI server behind `pforte serve`. Monkey-patching happens in app.entry before import.

Graceful shutdown: on SIGTERM (or SIGINT) the server closes its listening socket, closes idle keep-alive
connections, answers running requests with `Connection: close` and waits up to
PFORTE_SHUTDOWN_GRACE_SECONDS for them (streams included) to finish. Requests still running then are
cancelled; their `finally` blocks settle usage before the process exits. A second signal cancels at once.
"""
from __future__ import annotations

import gc
import logging
import signal
import socket
import sys
import time

import gevent
from flask import Flask
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from app.conversations import service as conversations
from app.extensions import db
from app.ops.instance_lock import InstanceBusy, hold_serving_lock
from app.ops.logs import configure_logging
from app.ops.wal import start_wal_checkpoints
from app.request_headers import parse_request_headers
from app.usage.retention import start_daily_purge

log = logging.getLogger("pforte.server")

# Purged with the request log once a day: stored conversations past their retention.
DAILY_PURGES = (("conversations", conversations.purge_expired),)

# Handlers cancelled after the grace period get this long to run their clean-up (usage settlement).
CANCEL_CLEANUP_SECONDS = 10


class DrainingHandler(WSGIHandler):
    """Knows whether it waits for the next request on a kept-alive connection, so shutdown can close it."""

    idle = False
    MessageClass = staticmethod(parse_request_headers)  # pywsgi's own goes through the email package

    def handle(self):
        # pywsgi writes a response's head and body (and each streamed event) separately; with Nagle's
        # algorithm the second write waits for the client's delayed ACK, about 40 ms on Linux.
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not a TCP socket
        self.server.handlers.add(self)
        try:
            super().handle()
        finally:
            self.server.handlers.discard(self)

    def log_request(self):
        pass  # pywsgi would format a line for its (disabled) log; app.ops.observe writes the access log

    def read_requestline(self):
        if self.server.draining:
            return ""
        self.idle = True
        try:
            return super().read_requestline()
        finally:
            self.idle = False

    def start_response(self, status, headers, exc_info=None):
        if self.server.draining:
            self.close_connection = True
            if not any(name.lower() == "connection" for name, _ in headers):
                headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)


class DrainingServer(WSGIServer):
    handler_class = DrainingHandler

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handlers: set[DrainingHandler] = set()
        self.draining = False

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

    server = DrainingServer((host, port), app, spawn=Pool(10000), log=None, error_log=log)
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
