"""WSGI middleware that sees every request from arrival to the last byte sent: it assigns the request id,
writes one access-log line and feeds the metrics. Bodies, query strings and headers are never looked at,
so neither secrets nor prompts can reach the log.

The gateway tells it what only the gateway knows: attach_call(environ, <pipeline Call>) once per API request
(its key, model, endpoint, error code and first-byte time are read when the answer is finished, so a
stream's late facts count). request_id() is the gateway's id when it set one, else ours.
"""
from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar

from app.client_ip import resolve_client_ip
from app.client_text import UNKNOWN_MODEL, printable
from app.ops import metrics

access_log = logging.getLogger("pforte.access")

ENVIRON_KEY = "pforte.request"
GATEWAY_REQUEST_ID = "pforte.request_id"
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
LOGGED_CHARS = 120  # at most this much of a client-chosen value (path, model) goes into a log line
# The request being handled; greenlets (and threads) each have their own context, so no Flask request
# context is needed (the API is answered without one, see app/gateway/dispatch.py).
_current: ContextVar[RequestRecord | None] = ContextVar("pforte_request", default=None)


class RequestRecord:
    """What is known about one request; lives in the WSGI environ."""

    __slots__ = ("_request_id", "started", "status", "response_request_id", "stream", "first_byte",
                 "key", "model", "model_label", "endpoint", "error_code", "ttfb_s", "call")

    def __init__(self):
        self._request_id: str | None = None
        self.started = time.perf_counter()
        self.status = 0
        self.response_request_id: str | None = None
        self.stream = False
        self.first_byte: float | None = None
        self.key: str | None = None
        self.model: str | None = None  # as the client sent it (for the log line, capped there)
        self.model_label: str | None = None  # a catalog model or assistant id, or `unknown` (for metrics)
        self.endpoint: str | None = None
        self.error_code: str | None = None
        self.ttfb_s: float | None = None
        self.call = None

    @property
    def request_id(self) -> str:
        """Made on first use: the gateway brings its own id for API requests."""
        if self._request_id is None:
            self._request_id = "req_" + secrets.token_hex(12)
        return self._request_id

    def take_facts_from_call(self) -> None:
        """Copy what the gateway's Call knows (key, model, endpoint, error_code, started, first_byte)."""
        call = self.call
        if call is None:
            return
        key = getattr(call, "key", None)
        model = getattr(call, "model", None)
        self.key = self.key or getattr(key, "public_id", None)
        name = getattr(call, "model_name", None)
        public_id = getattr(model, "public_id", None)
        self.model = self.model or public_id or name
        self.model_label = self.model_label or public_id or (UNKNOWN_MODEL if name else None)
        self.endpoint = self.endpoint or getattr(call, "endpoint", None)
        self.error_code = self.error_code or getattr(call, "error_code", None)
        first_byte = getattr(call, "first_byte", None)
        if self.ttfb_s is None and first_byte is not None:
            self.ttfb_s = max(0.0, first_byte - self.started)


def request_id() -> str | None:
    """The id of the request this greenlet (or thread) is handling; None outside a request."""
    record = _current.get()
    if record is None:
        return None
    call = record.call
    return call.request_id if call is not None else record.request_id


def attach_call(environ: dict, call) -> None:
    """Let the request's log line and metrics read their facts from the gateway's Call when it is done."""
    record = environ.get(ENVIRON_KEY)
    if record is not None:
        record.call = call


class _ObservedBody:
    """Wraps the response iterable to note the first byte and the moment the server is done with it."""

    __slots__ = ("_body", "_observer", "_environ", "_record", "_closed")

    def __init__(self, body, observer, environ, record):
        self._body = body
        self._observer = observer
        self._environ = environ
        self._record = record
        self._closed = False

    def __iter__(self):
        record = self._record
        for chunk in self._body:
            if record.first_byte is None and chunk:
                record.first_byte = time.perf_counter()
            yield chunk

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._observer.finish(self._environ, self._record)


class RequestObserver:
    """RequestObserver(wsgi_app, is_api_path, trusted_proxies); app.factory places it in the WSGI stack."""

    def __init__(self, wsgi_app, is_api_path, trusted_proxies: str = ""):
        self.wsgi_app = wsgi_app
        self.is_api_path = is_api_path
        self.trusted_proxies = trusted_proxies

    def __call__(self, environ, start_response):
        record = RequestRecord()
        environ[ENVIRON_KEY] = record
        _current.set(record)

        def observing_start_response(status, headers, exc_info=None):
            record.status = int(status.split(" ", 1)[0])
            for name, value in headers:
                lower = name.lower()
                if lower == "x-request-id":
                    record.response_request_id = value
                elif lower == "content-type" and value.startswith("text/event-stream"):
                    if not record.stream:
                        record.stream = True
                        metrics.stream_opened()
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, observing_start_response)
        except BaseException:
            record.status = record.status or 500
            self.finish(environ, record)
            raise
        return _ObservedBody(body, self, environ, record)

    def finish(self, environ, record: RequestRecord) -> None:
        if _current.get() is record:
            _current.set(None)
        now = time.perf_counter()
        latency = now - record.started
        if record.stream:
            metrics.stream_closed()
        path = environ.get("PATH_INFO", "")
        api = self.is_api_path(path)
        record.take_facts_from_call()
        ttfb = record.ttfb_s
        if ttfb is None and record.first_byte is not None:
            ttfb = record.first_byte - record.started
        if api:
            metrics.observe_request(record.endpoint or "other", record.model_label, record.status, latency, ttfb)
            if record.error_code and record.error_code.startswith("upstream_"):
                metrics.upstream_error(record.error_code.removeprefix("upstream_"))
        if path.startswith("/static/") or (path in QUIET_PATHS and record.status < 400):
            return
        fields = {
            "method": printable(environ.get("REQUEST_METHOD", ""), 16),
            "path": printable(path, LOGGED_CHARS),
            "status": record.status,
            "latency_ms": round(latency * 1000, 1),
        }
        if api:
            fields["ttfb_ms"] = round(ttfb * 1000, 1) if ttfb is not None else None
            fields["key"] = record.key
            fields["model"] = printable(record.model, LOGGED_CHARS) if record.model else None
            if record.error_code:
                fields["error"] = record.error_code
            if record.stream:
                fields["stream"] = True
        fields["ip"] = printable(self._client_ip(environ) or "", 64) or None
        fields["request_id"] = (record.response_request_id or environ.get(GATEWAY_REQUEST_ID)
                                or record.request_id)
        access_log.info("request", extra={"fields": fields})

    def _client_ip(self, environ) -> str:
        return resolve_client_ip(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"),
                                 self.trusted_proxies)
