"""The one error type of the API: a refused or failed request as the client will see it.

Every layer raises `ApiError`: the gateway for bad requests, policy for 402/403/429, providers for
upstream failures. Only the gateway renders it, in the OpenAI or the Anthropic wire shape
(see docs/architecture.md, "Errors"). Nothing here imports another part of the app.
"""
from __future__ import annotations

# The longest wait a client is told to make (`retry-after` header and `retry_after` in the body).
MAX_RETRY_AFTER = 60


def clamp_retry_after(seconds: float | int) -> int:
    """Whole seconds between 0 and MAX_RETRY_AFTER."""
    return max(0, min(int(seconds), MAX_RETRY_AFTER))


class ApiError(Exception):
    """HTTP status, OpenAI error type and code, message, the offending parameter, extra headers.

    `retry_after` (seconds) becomes the `retry-after` header; `retryable` False means that sending the
    same request again cannot help, which the client is told with `x-should-retry: false`."""

    def __init__(self, status: int, error_type: str, code: str | None, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None, retry_after: int | None = None,
                 retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.retry_after = retry_after
        self.retryable = retryable
