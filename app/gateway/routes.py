"""The public client API (OpenAI- and Anthropic-compatible). Routes stay thin: each hands its request to
pipeline.run() with the endpoint's checks and answer (see pipeline.py and openai_api.py). The routes are
answered by dispatch.ApiDispatcher below Flask (unknown paths and wrong methods too); Flask serves them
only for HEAD, and answers OPTIONS preflights with preflight() below.

Paths: /v1/… and the same under /api/openai-compat/v1/ and /api/v1/; the OpenAI ones also without the
/v1 (SDK base URLs that forgot it) and with a doubled /v1/v1. Every API response carries `x-request-id`
and CORS headers (no cookies are involved, so any origin may call with its key); OPTIONS answers 204.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from app.accounts.security import is_api_path
from app.extensions import limiter
from app.gateway import openai_api, pipeline, responses_api
from app.gateway.messages import handle_messages
from app.gateway.pipeline import REQUEST_ID_ENVIRON, new_request_id

bp = Blueprint("gateway", __name__)
csrf_exempt = True

PREFIXES = ("/v1", "/api/openai-compat/v1", "/api/v1", "", "/v1/v1")

CORS_ALLOW_HEADERS = ", ".join((
    "authorization", "content-type", "x-api-key", "api-key", "anthropic-version", "anthropic-beta",
    "anthropic-dangerous-direct-browser-access", "openai-organization", "openai-project", "x-request-id",
    "x-stainless-arch", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
    "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
    "x-stainless-read-timeout", "x-stainless-async", "x-stainless-helper-method", "x-stainless-poll-helper",
))
CORS_EXPOSE_HEADERS = ", ".join((
    "x-request-id", "request-id", "retry-after", "retry-after-ms", "x-should-retry",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window", "X-RateLimit-Warning",
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
    "x-pforte-dropped-tools",
))
CORS_MAX_AGE = "600"


# --- handlers: each takes the WSGI environ (served by dispatch.ApiDispatcher, or by Flask as a fallback) ---

def chat_completions(environ: dict) -> Response:
    return pipeline.run(environ, "chat", openai_api.answer_chat, validate=openai_api.validate_chat)


def completions(environ: dict) -> Response:
    return pipeline.run(environ, "completions", openai_api.answer_completions,
                        validate=openai_api.validate_completions)


def embeddings(environ: dict) -> Response:
    return pipeline.run(environ, "embeddings", openai_api.answer_embeddings,
                        validate=openai_api.validate_embeddings)


def responses(environ: dict) -> Response:
    return pipeline.run(environ, "responses", responses_api.answer_responses,
                        validate=responses_api.validate_responses)


def models(environ: dict) -> Response:
    return pipeline.run(environ, "models", openai_api.answer_models, validate=None)


def model(environ: dict, model_id: str) -> Response:
    return pipeline.run(environ, "models", lambda call: openai_api.answer_model(call, model_id), validate=None)


def stored_response(environ: dict, response_id: str) -> Response:
    return pipeline.run(environ, "responses", lambda call: responses_api.answer_stored(call, response_id),
                        validate=None)


def stored_input_items(environ: dict, response_id: str) -> Response:
    return pipeline.run(environ, "responses", lambda call: responses_api.answer_input_items(call, response_id),
                        validate=None)


def delete_stored_response(environ: dict, response_id: str) -> Response:
    return pipeline.run(environ, "responses", lambda call: responses_api.answer_delete(call, response_id),
                        validate=None)


def messages(environ: dict) -> Response:
    return handle_messages(environ)


# (path under a prefix, method, handler). A path with a <variable> (Werkzeug's rule syntax) passes it to the
# handler: a model id is the rest of the path (ids may hold slashes), a response id one path segment.
ROUTES = (
    ("/chat/completions", "POST", chat_completions),
    ("/completions", "POST", completions),
    ("/embeddings", "POST", embeddings),
    ("/models", "GET", models),
    ("/models/<path:model_id>", "GET", model),
    ("/messages", "POST", messages),
    ("/responses", "POST", responses),
    ("/responses/<response_id>", "GET", stored_response),
    ("/responses/<response_id>/input_items", "GET", stored_input_items),
    ("/responses/<response_id>", "DELETE", delete_stored_response),
)


def _flask_view(handler):
    def view(**kwargs):
        return handler(request.environ, **kwargs)

    view.api_handler = handler  # what dispatch.ApiDispatcher calls, with the WSGI environ
    return view


for _suffix, _method, _handler in ROUTES:
    for _prefix in PREFIXES:
        bp.add_url_rule(f"{_prefix}{_suffix}", endpoint=f"{_handler.__name__}{_prefix.replace('/', '_')}",
                        view_func=_flask_view(_handler), methods=[_method])


@limiter.request_filter
def gateway_has_own_limits() -> bool:
    """Flask-Limiter skips the API: the pipeline applies the per-IP and per-key limits (step 4)."""
    return request.blueprint == "gateway"


@bp.before_app_request
def preflight():
    """CORS preflight for any API path: 204, no body, no credentials needed."""
    if request.method == "OPTIONS" and is_api_path(request.path):
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            request.headers.get("Access-Control-Request-Headers") or CORS_ALLOW_HEADERS)
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response
    return None


@bp.after_app_request
def api_headers(response: Response) -> Response:
    """x-request-id and CORS on every API response that Flask answers (errors and preflights included)."""
    if is_api_path(request.path):
        add_api_headers(response.headers, request.environ)
    return response


def add_api_headers(headers, environ: dict) -> None:
    """x-request-id and CORS: any origin may call, since keys, not cookies, authenticate."""
    if "x-request-id" not in headers:
        headers["x-request-id"] = environ.get(REQUEST_ID_ENVIRON) or new_request_id()
    headers["Access-Control-Allow-Origin"] = "*"
    headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    headers.add("Vary", "Origin")
