"""API errors in the OpenAI shape (DESIGN §6): `{"error": {"message", "type", "param", "code"}}`."""
from __future__ import annotations

import json

from flask import Response, request

MAX_RETRY_AFTER = 60


class GatewayError(Exception):
    """A refused or failed API request: HTTP status, OpenAI error type and code, message, extra headers."""

    def __init__(self, status: int, error_type: str, code: str | None, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.retry_after = retry_after

    @classmethod
    def from_upstream(cls, error) -> GatewayError:
        """From app.providers.base.UpstreamError (x-should-retry: false when retrying cannot help)."""
        headers = None if getattr(error, "retryable", True) else {"x-should-retry": "false"}
        return cls(error.status, error.error_type, error.code, error.message, param=error.param,
                   headers=headers, retry_after=error.retry_after)

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(max(0, min(int(self.retry_after), MAX_RETRY_AFTER)))
        if self.status == 402:
            headers["x-should-retry"] = "false"
        return headers

    def body(self) -> dict:
        error = {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}
        if self.retry_after is not None:
            error["retry_after"] = max(0, min(int(self.retry_after), MAX_RETRY_AFTER))
        return {"error": error}


def invalid_request(message: str, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, "invalid_request_error", code, message, param=param)


def missing_api_key() -> GatewayError:
    return GatewayError(401, "invalid_request_error", "invalid_api_key",
                        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")


def invalid_api_key() -> GatewayError:
    return GatewayError(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")


def expired_api_key() -> GatewayError:
    return GatewayError(401, "invalid_request_error", "expired_api_key", "This API key has expired.")


def request_too_large(limit: int) -> GatewayError:
    return GatewayError(413, "invalid_request_error", "request_too_large",
                        f"The request body is larger than the limit of {limit} bytes.")


def model_not_found(model: str) -> GatewayError:
    return GatewayError(404, "invalid_request_error", "model_not_found",
                        f"The model `{model}` does not exist or you do not have access to it.", param="model")


def unknown_url(method: str, path: str) -> GatewayError:
    return GatewayError(404, "invalid_request_error", "unknown_url", f"Invalid URL ({method} {path})")


def method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(405, "invalid_request_error", "method_not_allowed",
                        f"Method {method} is not allowed on {path}.", headers={"Allow": allowed})


def internal_error() -> GatewayError:
    return GatewayError(500, "server_error", "internal_error",
                        "The server had an error processing your request. The request id helps the "
                        "administrator find it in the server log.")


def openai_error_response(error: GatewayError, _request_id: str | None = None) -> Response:
    body = json.dumps(error.body(), ensure_ascii=False)
    return Response(body, status=error.status, headers=error.response_headers(), mimetype="application/json")


def stream_error_frame(error: GatewayError) -> bytes:
    """The one SSE frame that reports a failure after a stream has started."""
    return b"data: " + json.dumps(error.body(), ensure_ascii=False).encode() + b"\n\n"


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
    return openai_error_response(GatewayError(status, "invalid_request_error", None, exc.description or exc.name))


def internal_error_response():
    return openai_error_response(internal_error())
