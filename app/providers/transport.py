"""Pooled HTTP to upstreams: one urllib3 pool per connection, timeouts, one retry on a failed connect,
and the mapping of transport failures and upstream error statuses to UpstreamError (DESIGN §6)."""
from __future__ import annotations

import json
import logging
from collections import OrderedDict

import gevent
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from app.catalog.entries import UpstreamTarget
from app.providers.base import UpstreamError, upstream_failed, upstream_timeout, upstream_unavailable

log = logging.getLogger(__name__)
# A pool over its size opens extra connections and drops them afterwards; that is expected under load.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

MAX_POOLS = 64
MAX_ERROR_BODY = 64 * 1024
MAX_RETRY_AFTER = 60
USER_AGENT = "Pforte"


class TotalTimeout(Exception):
    """The connection's total time limit ran out."""


class HttpTransport:
    """Keeps one connection pool per upstream connection (sized for `pool_size` concurrent requests)."""

    def __init__(self, pool_size: int = 256):
        self.pool_size = pool_size
        self._pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()

    def pool(self, target: UpstreamTarget, url: str) -> urllib3.HTTPConnectionPool:
        key = (target.connection_id, target.base_url, target.connect_timeout, target.read_timeout)
        pool = self._pools.get(key)
        if pool is None:
            timeout = urllib3.Timeout(connect=target.connect_timeout, read=target.read_timeout)
            pool = urllib3.connection_from_url(url, maxsize=self.pool_size, block=False, timeout=timeout,
                                               retries=False)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                _, old = self._pools.popitem(last=False)
                old.close()
        return pool

    def close(self) -> None:
        while self._pools:
            self._pools.popitem()[1].close()

    def send(self, target: UpstreamTarget, url: str, body: bytes, headers: dict[str, str]) -> urllib3.HTTPResponse:
        """POST `body`; returns the response once its status line and headers are in (body unread).

        A failed connect, or a pooled keep-alive connection that the upstream closed before answering, is
        retried once; nothing else is. Error statuses are raised as UpstreamError."""
        pool = self.pool(target, url)
        all_headers = {"Content-Type": "application/json", "Accept": "application/json",
                       "User-Agent": USER_AGENT, **headers}
        for attempt in (1, 2):
            try:
                response = pool.urlopen("POST", url, body=body, headers=all_headers, retries=False,
                                        redirect=False, preload_content=False, release_conn=False,
                                        assert_same_host=False)
                break
            except (NewConnectionError, ConnectTimeoutError) as exc:
                if attempt == 2:
                    raise _connect_error(exc) from None
            except ProtocolError as exc:
                # A kept-alive connection that the upstream had closed: the request never arrived.
                if attempt == 2 or not isinstance(exc.args[-1], (ConnectionResetError, BrokenPipeError)):
                    raise upstream_failed("The upstream model server closed the connection.") from None
            except ReadTimeoutError:
                raise upstream_timeout() from None
            except SSLError as exc:
                raise upstream_unavailable(f"TLS with the upstream model server failed: {exc}") from None
            except (HTTPError, OSError) as exc:
                raise upstream_failed(f"The upstream model server failed: {type(exc).__name__}") from None
        if response.status >= 400:
            raise error_from_response(response, target)
        return response

    def read_json(self, response: urllib3.HTTPResponse, target: UpstreamTarget) -> dict:
        """Read a whole JSON answer within the connection's total time limit."""
        try:
            with gevent.Timeout(target.total_timeout, TotalTimeout):
                data = response.read()
        except (ReadTimeoutError, TotalTimeout):
            _abort(response)
            raise upstream_timeout() from None
        except (ProtocolError, HTTPError, OSError):
            _abort(response)
            raise upstream_failed("The upstream model server broke off its answer.") from None
        response.release_conn()
        try:
            value = json.loads(data)
        except ValueError:
            raise upstream_failed("The upstream model server sent malformed JSON.") from None
        if not isinstance(value, dict):
            raise upstream_failed("The upstream model server sent an unexpected answer.")
        return value


def _connect_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, NewConnectionError):
        return upstream_unavailable("The upstream model server cannot be reached.")
    return upstream_unavailable("Connecting to the upstream model server timed out.")


def _abort(response: urllib3.HTTPResponse) -> None:
    """Close a response that was not read to the end, so its connection is not reused."""
    try:
        response.close()
    finally:
        response.release_conn()


def error_from_response(response: urllib3.HTTPResponse, target: UpstreamTarget) -> UpstreamError:
    """Turn an upstream error status into what the client gets (DESIGN §6); the body is read and released."""
    status = response.status
    try:
        with gevent.Timeout(min(target.read_timeout, 10.0), TotalTimeout):
            raw = response.read(MAX_ERROR_BODY)
    except (TotalTimeout, HTTPError, OSError):
        raw = b""
    _abort(response)
    message, code, param = _upstream_error_fields(raw)
    message = scrub(target, message) or f"HTTP {status}"
    if status in (400, 413, 422):
        return UpstreamError(400 if status == 422 else status, code or "invalid_request", message,
                             error_type="invalid_request_error", param=param)
    if status == 429:
        return UpstreamError(429, "rate_limit_exceeded", f"The upstream model server is rate limited: {message}",
                             error_type="rate_limit_error", retry_after=_retry_after(response))
    if status in (401, 403):
        return upstream_failed(f"The upstream model server refused the gateway's credential (HTTP {status}).")
    if status in (408, 504, 524):
        return upstream_timeout(f"The upstream model server timed out (HTTP {status}).")
    if status in (503, 529):
        return upstream_unavailable(f"The upstream model server is unavailable (HTTP {status}): {message}")
    return upstream_failed(f"The upstream model server answered HTTP {status}: {message}")


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


def _retry_after(response: urllib3.HTTPResponse) -> int:
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
