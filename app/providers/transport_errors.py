"""The transport's own failures, below HTTP: no usable answer came back.

Each carries a message fit for the client; `upstream_errors.from_transport_error` turns one into the
UpstreamError the gateway answers with, and the "Test connection" probe reports them by kind.
"""
from __future__ import annotations


class TransportError(Exception):
    """An exchange with an upstream failed before a complete answer arrived."""

    default_message = "The upstream model server failed."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class ConnectFailed(TransportError):
    """No connection to the upstream. `reason`: refused (also DNS and unreachable), timeout, tls, proxy,
    blocked (a link-local or metadata address) or config (a base URL or CA bundle that cannot be used)."""

    default_message = "The upstream model server cannot be reached."

    def __init__(self, message: str | None = None, reason: str = "refused"):
        super().__init__(message)
        self.reason = reason


class ReadTimedOut(TransportError):
    """The upstream was silent for longer than the connection's read timeout."""

    default_message = "The upstream model server did not answer in time."


class ConnectionBroken(TransportError):
    """The connection broke off, or what came back is not HTTP."""

    default_message = "The upstream connection broke."


class TotalTimeout(TransportError):
    """The connection's total time limit ran out."""

    default_message = "The upstream model server did not answer in time."


class AnswerTooLarge(TransportError):
    """The upstream sent more than a cap of `AnswerLimits` allows: a body, one stream event, or what a
    compressed answer inflates to."""

    default_message = "The upstream model server sent an answer larger than this gateway accepts."
