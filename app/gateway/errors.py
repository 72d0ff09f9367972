"""API errors in the OpenAI shape (DESIGN §6)."""
from __future__ import annotations

from flask import jsonify


def error_response(status: int, message: str, type_: str, code: str | None, param: str | None = None):
    response = jsonify({"error": {"message": message, "type": type_, "param": param, "code": code}})
    response.status_code = status
    return response


def http_exception_response(exc):
    if exc.code == 404:
        return error_response(404, "Unknown URL.", "invalid_request_error", "unknown_url")
    return error_response(exc.code or 500, exc.description or exc.name, "invalid_request_error", None)


def internal_error_response():
    return error_response(500, "The server had an error processing your request.", "server_error", "internal_error")
