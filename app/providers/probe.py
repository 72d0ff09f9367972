""""Test connection": ask an upstream which models it offers and report what it answered.

The request takes the gateway's own upstream transport (the same proxies, CA bundle and timeouts as
real traffic), so what the probe reports is what requests will meet. No Flask and no database. The
credential goes only into the request headers and is scrubbed from any text shown back.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from app.providers import shared_transport
from app.providers.azure import DEFAULT_API_VERSION as AZURE_DEFAULT_API_VERSION
from app.providers.base import UpstreamTarget
from app.providers.transport import HttpTransport
from app.providers.transport_errors import ConnectFailed, ReadTimedOut, TotalTimeout, TransportError

ANTHROPIC_VERSION = "2023-06-01"
PROBE_READ_TIMEOUT = 15.0  # seconds; a probe never waits as long as a long completion may
MAX_BODY_BYTES = 1024 * 1024
MAX_MODELS_SHOWN = 100
MAX_DETAIL_CHARS = 500


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw. `error_kind`: timeout | connect | tls | blocked | redirect | http |
    invalid_response."""

    ok: bool
    kind: str
    url: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    models: tuple[str, ...] = ()
    model_count: int = 0
    error_kind: str | None = None
    detail: str | None = None
    demo: bool = False


def models_request(target: UpstreamTarget) -> tuple[str, dict[str, str], dict[str, str]]:
    """(url, query parameters, headers) of the model-list request for a connection kind."""
    base = target.base_url.rstrip("/")
    key = target.api_key or ""
    if target.kind == "azure":
        if base.endswith("/openai/v1"):  # Azure's OpenAI-style API needs no api-version
            return f"{base}/models", {}, {"api-key": key}
        params = {"api-version": target.api_version or AZURE_DEFAULT_API_VERSION}
        marker = base.find("/openai")
        root = base[: marker + len("/openai")] if marker >= 0 else f"{base}/openai"
        return f"{root}/models", params, {"api-key": key}
    if target.kind == "anthropic":
        url = f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"
        return url, {}, {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return f"{base}/models", {}, headers


def probe_connection(target: UpstreamTarget, transport: HttpTransport | None = None) -> ProbeResult:
    """GET the upstream's model list with the connection's credential through `transport` (the shared
    one by default); never raises for network trouble."""
    if target.kind == "demo":
        return ProbeResult(ok=True, kind="demo", demo=True, latency_ms=0.0)
    url, params, headers = models_request(target)
    headers = {k: v for k, v in headers.items() if v}
    request_url = f"{url}?{urlencode(params)}" if params else url
    probe_target = replace(target, read_timeout=min(target.read_timeout, PROBE_READ_TIMEOUT))
    transport = transport or shared_transport()
    started = time.perf_counter()
    try:
        response = transport.open(probe_target, request_url, b"", headers, method="GET")
        try:
            body = response.read(MAX_BODY_BYTES)
        finally:
            response.release_conn()  # closes the connection unless the body was read to its end
        latency = (time.perf_counter() - started) * 1000
        return _interpret(target, url, response.status, response.headers, body, latency)
    except ConnectFailed as exc:
        kind = exc.reason if exc.reason in ("tls", "timeout", "blocked") else "connect"
        return _failure(target, url, started, kind, exc.message)
    except (ReadTimedOut, TotalTimeout) as exc:
        return _failure(target, url, started, "timeout", exc.message)
    except TransportError as exc:
        return _failure(target, url, started, "connect", exc.message)


def _interpret(target: UpstreamTarget, url: str, status: int, headers: dict[str, str], body: bytes,
               latency: float) -> ProbeResult:
    common = {"kind": target.kind, "url": url, "status": status, "latency_ms": round(latency, 1)}
    if 300 <= status < 400:
        location = headers.get("location", "")
        return ProbeResult(ok=False, error_kind="redirect", detail=_scrub(target, location), **common)
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if status >= 400:
        detail = _scrub(target, _error_text(payload, body))
        return ProbeResult(ok=False, error_kind="http", detail=detail, **common)
    ids = _model_ids(payload)
    if ids is None:
        text = body[:MAX_DETAIL_CHARS].decode("utf-8", "replace")
        return ProbeResult(ok=False, error_kind="invalid_response", detail=_scrub(target, text), **common)
    return ProbeResult(ok=True, models=tuple(ids[:MAX_MODELS_SHOWN]), model_count=len(ids), **common)


def _model_ids(payload) -> list[str] | None:
    """Model ids from an OpenAI/Anthropic/Azure list answer ({"data": [{"id": …}]}), else None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None
    return [str(item["id"]) for item in payload["data"] if isinstance(item, dict) and item.get("id")]


def _error_text(payload, body: bytes) -> str:
    """The upstream's own error message where it sent one in a known shape, else the start of the body."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if payload.get("message"):
            return str(payload["message"])
    return body[:MAX_DETAIL_CHARS].decode("utf-8", "replace")


def _failure(target: UpstreamTarget, url: str, started: float, kind: str, detail: str) -> ProbeResult:
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ProbeResult(ok=False, kind=target.kind, url=url, latency_ms=latency, error_kind=kind,
                       detail=_scrub(target, detail))


def _scrub(target: UpstreamTarget, text: str) -> str:
    """Cut to a readable length and remove the credential should the upstream echo it."""
    text = text or ""
    if target.api_key and len(target.api_key) >= 4:
        text = text.replace(target.api_key, "[redacted]")
    return text[:MAX_DETAIL_CHARS]
