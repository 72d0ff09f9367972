"""The request pipeline (see docs/architecture.md). Each step is a small function; the order is the contract:

0 per-IP limit · 1 credential · 2 key · 3 client IP · 4 key limits · 5 request (body, scope) · 6 model ·
7 budget · 8 forward · 9 relay · 10 settle (always, in `finally`).

The per-IP limit is counted first (step 0), before the credential is even read, so that it applies to every
API call: also to calls with a missing, unknown or invalid key and to calls that the key's IP allow list
refuses. Were it counted after authentication, someone guessing keys would never be rate limited. The per-key
windows and the concurrency cap stay in step 4; the rate-limit headers describe the tightest of all windows.

`run()` drives one API request through the steps and answers errors in the caller's wire shape, so the
OpenAI routes and the Anthropic `/v1/messages` route share everything but their translation.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, current_app, has_app_context

from app.api_errors import ApiError
from app.catalog.entries import ModelEntry
from app.catalog.service import lookup_model
from app.client_ip import resolve_client_ip
from app.client_text import MAX_MODEL_NAME, printable
from app.credits import cost_micro
from app.extensions import db
from app.gateway import assistant_context, conversation_context, errors, json_body
from app.keys.context import KeyContext, KeyRejection
from app.keys.verify import verify_key
from app.ops import observe
from app.policy import service as policy
from app.policy.service import LimitGrant, Reservation
from app.providers import provider_for
from app.providers.base import UpstreamStream, Usage
from app.usage.settle import RequestRecord, settle_request

log = logging.getLogger(__name__)

REQUEST_ID_ENVIRON = "pforte.request_id"
# Which capability a model needs for an endpoint (a model without capabilities offers all).
ENDPOINT_CAPABILITY = {"chat": "chat", "completions": "chat", "messages": "chat", "responses": "chat",
                       "embeddings": "embeddings"}
# The fields that cap the output per endpoint (for messages and responses, the one Pforte writes; for chat and
# completions that is cap_field's).
OUTPUT_CAP_FIELDS = {"chat": ("max_tokens", "max_completion_tokens"),
                     "completions": ("max_tokens", "max_completion_tokens"),
                     "messages": ("max_tokens",), "responses": ("max_output_tokens",),
                     "embeddings": ()}
# Upstream kinds that read every cap field a client may send (OpenAI's own API does too, see cap_field).
READS_EVERY_CAP = frozenset({"azure", "anthropic", "demo"})


@dataclass(slots=True, eq=False)
class Call:
    """One API request on its way through the pipeline, and what settle() will record."""

    endpoint: str  # chat | completions | embeddings | messages | responses | models
    request_id: str
    started: float
    app: object = None
    environ: dict | None = None  # the WSGI environ (read directly: cheaper than the request proxy)
    client_ip: str = ""
    key: KeyContext | None = None
    grant: LimitGrant | None = None
    body: dict | None = None
    body_size: int = 0
    context_bytes: int = 0  # sent upstream besides the body (instructions, stored turns): in the estimate
    model_name: str | None = None
    model: ModelEntry | None = None
    assistant: object = None  # the AssistantEntry answering the call (assistant_context)
    thread_id: str | None = None  # the chat thread the call continues or starts (conversation_context)
    thread: object = None  # that thread as loaded or last stored
    previous_response: object = None  # the stored response a Responses call continues (conversation_context)
    reservation: Reservation | None = None
    stream: bool = False
    forwarded: bool = False
    status: int = 200
    error_code: str | None = None
    usage: Usage | None = None
    output_estimate: int = 0  # tokens, when upstream reports no usage
    first_byte: float | None = None
    settled: bool = False
    handed_off: bool = False  # a stream settles when it ends, not when the view returns

    def fail(self, error: ApiError) -> None:
        self.status = error.status
        self.error_code = error.code

    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()


def new_request_id() -> str:
    """A unique id for logs and support (not a secret, so the fast PRNG is enough)."""
    return f"req_{random.getrandbits(96):024x}"


class _InFlight:
    """API calls of this process begun and not yet settled (whether a commit is worth sharing)."""

    count = 0


def begin(environ: dict, endpoint: str) -> Call:
    _InFlight.count += 1
    app = current_app._get_current_object()
    call = Call(endpoint=endpoint, request_id=new_request_id(), started=time.perf_counter(), app=app,
                environ=environ)
    environ[REQUEST_ID_ENVIRON] = call.request_id
    observe.attach_call(environ, call)  # access log and metrics read key, model, status and timings from it
    call.client_ip = resolve_client_ip(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"),
                                       app.config.get("PFORTE_TRUSTED_PROXIES", ""))
    return call


# --- steps 1 to 7 --------------------------------------------------------------------------------

def read_credential(environ: dict) -> str | None:
    """Step 1: `Authorization: Bearer` (any case), else `x-api-key`, else `api-key`."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (environ.get("HTTP_X_API_KEY") or environ.get("HTTP_API_KEY") or "").strip() or None


def authenticate(call: Call) -> None:
    """Step 2: the same 401 for unknown, malformed, revoked and disabled keys; expired keys may say so."""
    raw = read_credential(call.environ)
    if raw is None:
        raise errors.missing_api_key()
    result = verify_key(raw)
    if isinstance(result, KeyRejection):
        raise errors.expired_api_key() if result.reason == "expired" else errors.invalid_api_key()
    call.key = result


def limit_client_ip(call: Call) -> None:
    """Step 0: the per-IP limit, counted for every API call (a brute-force guard, see the module docstring)."""
    call.grant = policy.limit_ip(call.client_ip)


def check_client_ip(call: Call) -> None:
    """Step 3."""
    policy.check_ip(call.key, call.client_ip)


def acquire_limits(call: Call) -> None:
    """Step 4: the key's limits and concurrency (the per-IP limit has been counted in step 0)."""
    call.grant = policy.acquire_limits(call.key, call.client_ip, call.grant)


def read_body(call: Call, validate: Callable[[dict], None] | None) -> None:
    """Step 5: the key's scope covers the endpoint; a JSON object within the size limit; required fields."""
    environ = call.environ
    policy.check_scope(call.key, call.endpoint, environ["REQUEST_METHOD"])
    if validate is None:
        return
    limit = int(call.app.config["PFORTE_MAX_BODY_BYTES"])
    try:
        raw = _read_limited(environ, limit)
    except TimeoutError:  # the client stalled for PFORTE_WRITE_TIMEOUT_SECONDS (app/server.py)
        raise ApiError(408, "invalid_request_error", "request_timeout",
                       "The request body did not arrive in time.") from None
    call.body_size = len(raw)
    try:
        body = json_body.parse(raw)
    except json_body.BodyError as exc:
        raise errors.invalid_request(f"We could not accept the JSON body of your request: {exc}") from None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise errors.invalid_request(
            "We could not parse the JSON body of your request. Send a JSON object.") from None
    if not isinstance(body, dict):
        raise errors.invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not model and call.key.assistant_id:  # a key made for an assistant may leave the model out
        model = body["model"] = call.key.assistant_id
    if not isinstance(model, str) or not model:
        raise errors.invalid_request("You must provide a model parameter.", param="model")
    call.model_name = model
    if len(model) > MAX_MODEL_NAME:
        raise errors.invalid_request(f"The model name is longer than {MAX_MODEL_NAME} characters.", param="model")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise errors.invalid_request("'stream' must be true or false.", param="stream")
    call.model_name = model
    call.stream = bool(stream)
    validate(body)
    call.body = body


def _read_limited(environ: dict, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            length = int(length)
        except ValueError:
            raise errors.invalid_request("The Content-Length header is not a number.") from None
        if length > limit:
            raise errors.request_too_large(limit)
        return stream.read(length) if length else b""
    if not environ.get("wsgi.input_terminated"):
        return b""
    parts, size = [], 0
    while True:  # chunked request body
        part = stream.read(min(65536, limit + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise errors.request_too_large(limit)


def resolve_model(call: Call) -> None:
    """Step 6: an enabled catalog model that offers this endpoint and that the key may use, or an
    assistant (always for a key made for one; see assistant_context)."""
    entry = None if call.key.assistant_id else lookup_model(call.model_name)
    if entry is None:
        entry = assistant_context.resolve(call)
    elif entry.target is None:
        raise errors.model_not_found(call.model_name)
    else:
        policy.check_model(call.key, entry)
    needed = ENDPOINT_CAPABILITY.get(call.endpoint)
    if needed and entry.capabilities and needed not in entry.capabilities:
        raise errors.invalid_request(f"The model `{entry.public_id}` does not offer the {call.endpoint} endpoint.",
                                     param="model")
    if call.body.get("tools") and entry.capabilities and "tools" not in entry.capabilities:
        raise errors.invalid_request(f"The model `{entry.public_id}` does not support tools.", param="tools")
    call.model = entry


def reserve_budget(call: Call) -> None:
    """Step 7: reserve the worst case: the prompt estimated from the body size, and the output cap (the
    client's, else an assistant's, else the model's default max_output_tokens) in every choice the request
    asks for (`n`, `best_of`, each prompt of a completions request).

    When a budget applies, the cap the reservation covers (the one asked for, or less when the credits left
    pay for less) is written into the request that goes upstream, in every cap field the client sent and in
    the one the upstream reads (`set_output_cap`): the upstream is never asked for more output than was
    reserved. An assistant's cap stands in for the client's when the client sends none, and goes upstream
    too. A cap of 0 counts as none."""
    body = call.body
    fields = OUTPUT_CAP_FIELDS.get(call.endpoint, ())
    asked = [value for value in map(body.get, fields) if _count(value)]
    client_cap = min(asked) if asked else None
    default_cap = None if client_cap else assistant_context.default_output_cap(call)
    wanted = client_cap or default_cap
    if not fields:
        wanted = 0  # embeddings: no output
    call.reservation = policy.reserve_budget(call.key, call.model, (call.body_size + call.context_bytes) // 4 + 1,
                                             wanted, share_commit=_InFlight.count > 1, choices=output_choices(call))
    cap = call.reservation.output_cap or default_cap
    if cap and fields:
        set_output_cap(call, cap)


def output_choices(call: Call) -> int:
    """How many answers the request asks upstream to write: `n` (and `best_of`, which is billed whole) per
    prompt; a completions request may carry several prompts."""
    body = call.body
    if call.endpoint not in ("chat", "completions"):
        return 1
    choices = max(_count(body.get("n")) or 1, _count(body.get("best_of")) or 1)
    prompt = body.get("prompt") if call.endpoint == "completions" else None
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):  # several prompts, not token ids
        choices *= len(prompt)
    return choices


def set_output_cap(call: Call, cap: int) -> None:
    """Write `cap` into every output cap field of the body the client sent, and into the field the upstream
    is sure to read (an OpenAI-style server other than OpenAI's and Azure may ignore max_completion_tokens)."""
    body = call.body
    fields = OUTPUT_CAP_FIELDS[call.endpoint]
    sent = [name for name in fields if body.get(name) is not None]
    for name in sent:
        body[name] = cap
    if call.endpoint in ("chat", "completions"):
        field = cap_field(call)  # max_completion_tokens only for OpenAI's own API, which reads both
        reads_sent = call.endpoint == "chat" and (call.model.target.kind in READS_EVERY_CAP
                                                  or field == "max_completion_tokens")
        if not (sent and reads_sent):
            body[field] = cap
    elif not sent:
        body[fields[0]] = cap
    if call.endpoint == "messages" and body.get("max_completion_tokens") is not None:
        body["max_completion_tokens"] = cap  # no Messages field, but an upstream passed the body might read it


def _count(value) -> int:
    """A positive integer field as a count (bounded), else 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, 2**62)
    return 0


def cap_field(call: Call) -> str:
    """OpenAI's own API refuses `max_tokens` for its reasoning models and takes `max_completion_tokens`
    for every chat model; other OpenAI-style servers (vLLM, Ollama, llama.cpp) know `max_tokens` best."""
    if call.endpoint in ("chat", "responses") and "api.openai.com" in call.model.target.base_url:
        return "max_completion_tokens"
    return "max_tokens"


def admit(call: Call, validate: Callable[[dict], None] | None) -> None:
    """Steps 0–7. With validate=None the request has no body and no model (GET /v1/models)."""
    limit_client_ip(call)
    authenticate(call)
    check_client_ip(call)
    acquire_limits(call)
    read_body(call, validate)
    if validate is not None:
        resolve_model(call)
        conversation_context.prepare(call)
        reserve_budget(call)


# --- step 8 --------------------------------------------------------------------------------------

def forward(call: Call, endpoint: str, body: dict) -> dict | UpstreamStream:
    """Step 8: send an OpenAI-shaped request (model already the upstream name) to the model's provider."""
    target = call.model.target
    provider = provider_for(target.kind)
    call.forwarded = True
    return provider.request(target, endpoint, body, call.stream)


# --- step 10 -------------------------------------------------------------------------------------

def settle(call: Call) -> None:
    """Step 10: record the request and book its cost, release its reservation and its concurrency slot. Never
    raises: should anything before the write fail, the row is still written (with what is known for sure)."""
    if call.settled:
        return
    call.settled = True
    _InFlight.count -= 1
    try:
        record = _record(call)
    except Exception:  # a bug: the row still goes in, with what is known for sure
        log.exception("request %s: accounting for the settlement failed", call.request_id)
        record = RequestRecord(request_id=call.request_id, endpoint=call.endpoint, status=call.status,
                               key_id=call.key.id if call.key else None, stream=call.stream,
                               error_code=call.error_code, client_ip=call.client_ip or None)
    try:
        if has_app_context():
            settle_request(db.engine, record, call.reservation, call.grant)
        else:  # the end of a stream runs after the request context is gone
            with call.app.app_context():
                settle_request(db.engine, record, call.reservation, call.grant)
    except Exception:  # settle_request never raises; the app context could
        log.exception("settling request %s failed", call.request_id)
        if call.grant is not None:
            call.grant.release()


def _record(call: Call) -> RequestRecord:
    """What the request-log row says: the usage reported, else estimated (when an answer was produced).
    With PFORTE_TESTING_FAULTS (the test suite only) the header `x-pforte-test-fault: settle` makes it fail."""
    if call.app.config.get("PFORTE_TESTING_FAULTS") and call.environ.get("HTTP_X_PFORTE_TEST_FAULT") == "settle":
        raise RuntimeError("injected fault in the settlement (PFORTE_TESTING_FAULTS)")
    usage = call.usage
    if usage is None and call.forwarded and (call.status < 400 or call.first_byte):
        usage = Usage(estimate_prompt_tokens(call.body), call.output_estimate, estimated=True)
    usage = usage or Usage()
    model = call.model
    credits = cost_micro(usage.input_tokens, usage.output_tokens, model.input_price, model.output_price) \
        if model else 0
    now = time.perf_counter()
    return RequestRecord(
        request_id=call.request_id, endpoint=call.endpoint, status=call.status,
        key_id=call.key.id if call.key else None,
        model=model.public_id if model else (printable(call.model_name, 200) if call.model_name else None),
        catalog_model=model is not None or not call.model_name,
        stream=call.stream, error_code=call.error_code, input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens, credits_micro=credits,
        latency_ms=round((now - call.started) * 1000, 2),
        ttfb_ms=round((call.first_byte - call.started) * 1000, 2) if call.first_byte else None,
        client_ip=call.client_ip or None, usage_estimated=usage.estimated,
    )


def estimate_prompt_tokens(body: dict | None) -> int:
    """About four characters per token, over the text the client sent."""
    if not body:
        return 0
    chars = 0
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            chars += _text_length(message.get("content"))
    for field in ("prompt", "input", "system"):
        chars += _text_length(body.get(field))
    return (chars + 3) // 4


def _text_length(value) -> int:
    """The characters of the strings in `value`, its lists nested to any depth and the `text` of their objects
    (walked with a stack, not by recursion: a body may nest deeper than the interpreter's stack allows)."""
    chars, pending = 0, [value]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            pending.extend(item.get("text") if isinstance(item, dict) else item for item in value)
    return chars


# --- driving a request ---------------------------------------------------------------------------

def run(environ: dict, endpoint: str, answer: Callable[[Call], Response], *,
        validate: Callable[[dict], None] | None,
        render_error: Callable[[ApiError, str], Response] = errors.openai_error_response,
        admission: Callable[[Call, Callable | None], None] = admit) -> Response:
    """Admit the request (steps 0–7), let `answer` forward and relay it (8–9), settle (10).

    `answer` returns the response; for a stream it sets call.handed_off and settles when the stream ends.
    Any failure becomes `render_error(ApiError, request_id)`. Needs an app context, no request context."""
    call = begin(environ, endpoint)
    try:
        admission(call, validate)
        response = answer(call)
    except ApiError as exc:
        call.fail(exc)
        response = render_error(exc, call.request_id)
    except Exception:
        log.exception("request %s (%s) failed", call.request_id, endpoint)
        exc = errors.internal_error()
        call.fail(exc)
        response = render_error(exc, call.request_id)
    finally:
        if not call.handed_off:
            settle(call)
    headers = response.headers
    if call.grant is not None:
        present = {name.lower() for name, _value in headers}  # one pass (setdefault scans per header)
        for name, value in call.grant.headers().items():
            if name.lower() not in present:
                headers.add(name, value)
    headers["x-request-id"] = call.request_id
    return response


def refuse(environ: dict, error: ApiError) -> Response:
    """A call to no API route (unknown path, wrong method): counted against the per-IP limit and recorded
    in the request log like every API call (endpoint "other", no key), then answered with `error`."""

    def answer(_call: Call) -> Response:
        raise error

    return run(environ, "other", answer, validate=None, admission=lambda call, _validate: limit_client_ip(call))
