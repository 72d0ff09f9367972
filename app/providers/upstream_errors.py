"""What the client is told when an upstream fails: error statuses and transport failures as UpstreamError."""
from __future__ import annotations

import json

import gevent

from app.api_errors import MAX_RETRY_AFTER
from app.providers.base import (
    UpstreamError,
    UpstreamTarget,
    upstream_error,
    upstream_failed,
    upstream_timeout,
    upstream_unavailable,
)
from app.providers.response import Response
from app.providers.transport_errors import AnswerTooLarge, ConnectFailed, ReadTimedOut, TotalTimeout, TransportError

MAX_ERROR_BODY = 64 * 1024


def error_from_response(response: Response, target: UpstreamTarget) -> UpstreamError:
    """Turn an upstream error status into what the client gets; the body is read and released."""
    status = response.status
    try:
        with gevent.Timeout(min(target.read_timeout, 10.0), TotalTimeout):
            raw = response.read(MAX_ERROR_BODY)
        response.release_conn()
    except TransportError:  # TotalTimeout, ReadTimedOut, ConnectionBroken
        raw = b""
        response.close()
    message, code, param = _upstream_error_fields(raw)
    message = scrub(target, message) or f"HTTP {status}"
    if status in (400, 413, 422):
        return upstream_error(400 if status == 422 else status, code or "invalid_request", message,
                             error_type="invalid_request_error", param=param)
    if status == 429:
        return upstream_error(429, "rate_limit_exceeded", f"The upstream model server is rate limited: {message}",
                             error_type="rate_limit_error", retry_after=_retry_after(response))
    if status in (401, 403):  # the connection's credential is wrong: an administrator has to fix it
        return upstream_failed(f"The upstream model server refused the gateway's credential (HTTP {status}).",
                               retryable=False)
    if status == 404:  # wrong upstream model name or base URL: the same on every attempt
        return upstream_failed(f"The upstream model server answered HTTP 404 (check the connection's base URL "
                               f"and the model's upstream name): {message}", retryable=False)
    if status in (408, 504, 524):
        return upstream_timeout(f"The upstream model server timed out (HTTP {status}).")
    if status in (503, 529):
        return upstream_unavailable(f"The upstream model server is unavailable (HTTP {status}): {message}")
    return upstream_failed(f"The upstream model server answered HTTP {status}: {message}")


def from_transport_error(exc: TransportError) -> UpstreamError:
    """A failure below HTTP as what the client gets: 503 without a connection, 504 on a timeout, else 502."""
    if isinstance(exc, ConnectFailed):
        return upstream_unavailable(exc.message)
    if isinstance(exc, ReadTimedOut | TotalTimeout):
        return upstream_timeout(exc.message)
    return upstream_failed(exc.message)


def from_stream_read_error(exc: Exception) -> UpstreamError:
    """A read failure in the middle of a stream (a TransportError or OSError): 504 on a read timeout, the
    cap's message for an answer too large, else 502 "broke off"."""
    if isinstance(exc, ReadTimedOut):
        return upstream_timeout()
    if isinstance(exc, AnswerTooLarge):
        return upstream_failed(exc.message)
    return upstream_failed("The upstream model server broke off the stream.")


def _upstream_error_fields(raw: bytes) -> tuple[str, str | None, str | None]:
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            param = error.get("param")
            return (str(error.get("message") or ""), str(code) if isinstance(code, str) else None,
                    param if isinstance(param, str) else None)
        if isinstance(error, str):
            return error, None, None
        if isinstance(payload.get("message"), str):
            return payload["message"], None, None
    return raw[:300].decode("utf-8", "replace").strip(), None, None


def _retry_after(response: Response) -> int:
    try:
        seconds = int(float(response.headers.get("retry-after", "1")))
    except ValueError:
        seconds = 1
    return max(1, min(seconds, MAX_RETRY_AFTER))


def scrub(target: UpstreamTarget, text: str) -> str:
    """Cut an upstream message to a readable length and remove the credential should it be echoed."""
    if target.api_key and len(target.api_key) >= 4:
        text = text.replace(target.api_key, "[redacted]")
    return text[:500]
