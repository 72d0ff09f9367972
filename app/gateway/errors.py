"""API errors rendered in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`."""
from __future__ import annotations

import json

from flask import Response, request

from app.api_errors import ApiError, clamp_retry_after
from app.client_text import MAX_MODEL_NAME, printable


def response_headers(error: ApiError) -> dict[str, str]:
    """The extra HTTP headers of an error answer (both wire shapes)."""
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = str(clamp_retry_after(error.retry_after))
    if error.status == 402 or not error.retryable:
        headers["x-should-retry"] = "false"
    return headers


def openai_error_body(error: ApiError) -> dict:
    """`{"error": {"message", "type", "param", "code"}}` (plus `retry_after` when set)."""
    body = {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}
    if error.retry_after is not None:
        body["retry_after"] = clamp_retry_after(error.retry_after)
    return {"error": body}


def invalid_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, "invalid_request_error", code, message, param=param)


def missing_api_key() -> ApiError:
    return ApiError(401, "invalid_request_error", "invalid_api_key",
                        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")


def invalid_api_key() -> ApiError:
    return ApiError(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")


def key_ended(status: str) -> ApiError:
    """The end of a stream whose key was revoked or disabled while it ran (app.gateway.key_watch)."""
    word = "revoked" if status == "revoked" else "disabled"
    return ApiError(401, "invalid_request_error", "invalid_api_key",
                    f"The API key was {word} while this stream was running.")


def expired_api_key() -> ApiError:
    return ApiError(401, "invalid_request_error", "expired_api_key", "This API key has expired.")


def request_too_large(limit: int) -> ApiError:
    return ApiError(413, "invalid_request_error", "request_too_large",
                        f"The request body is larger than the limit of {limit} bytes.")


def model_not_found(model: str) -> ApiError:
    return ApiError(404, "invalid_request_error", "model_not_found",
                    f"The model `{printable(model, MAX_MODEL_NAME)}` does not exist or you do not have access to it.",
                    param="model")


def unknown_url(method: str, path: str) -> ApiError:
    return ApiError(404, "invalid_request_error", "unknown_url", f"Invalid URL ({method} {path})")


def method_not_allowed(method: str, path: str, allowed: str) -> ApiError:
    return ApiError(405, "invalid_request_error", "method_not_allowed",
                        f"Method {method} is not allowed on {path}.", headers={"Allow": allowed})


def internal_error() -> ApiError:
    return ApiError(500, "server_error", "internal_error",
                        "The server had an error processing your request. The request id helps the "
                        "administrator find it in the server log.")


def openai_error_response(error: ApiError, _request_id: str | None = None) -> Response:
    body = json.dumps(openai_error_body(error), ensure_ascii=False)
    return Response(body, status=error.status, headers=response_headers(error), mimetype="application/json")


def stream_error_frame(error: ApiError) -> bytes:
    """The one SSE frame that reports a failure after a stream has started."""
    return b"data: " + json.dumps(openai_error_body(error), ensure_ascii=False).encode() + b"\n\n"


def http_exception_response(exc):
    """JSON for werkzeug errors on API paths (unknown route, wrong method, …)."""
    if exc.code == 404:
        return openai_error_response(unknown_url(request.method, request.path))
    if exc.code == 405:
        return openai_error_response(method_not_allowed(request.method, request.path,
                                                        ", ".join(exc.valid_methods or ())))
    status = exc.code or 500
    if status >= 500:
        return openai_error_response(internal_error())
    return openai_error_response(ApiError(status, "invalid_request_error", None, exc.description or exc.name))


def internal_error_response():
    return openai_error_response(internal_error())
