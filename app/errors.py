"""Error pages for the admin UI; the API answers errors in its own JSON shape (app.gateway.errors)."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from app.accounts.security import is_api_path

log = logging.getLogger(__name__)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if is_api_path(request.path):
            from app.gateway.errors import http_exception_response

            return http_exception_response(exc)
        return render_template("errors/error.html", code=exc.code, name=exc.name), exc.code

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api_path(request.path):
            from app.gateway.errors import internal_error_response

            return internal_error_response()
        return render_template("errors/error.html", code=500, name="Internal Server Error"), 500
