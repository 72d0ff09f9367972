"""Error pages for the admin UI; the API answers errors in its own JSON shape (app.gateway.errors)."""
from __future__ import annotations

import logging

from flask import Flask, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.accounts.security import is_api_path
from app.extensions import db
from app.gateway.errors import http_exception_response, internal_error_response

log = logging.getLogger(__name__)

TITLES = {
    400: _l("Bad request"),
    403: _l("Forbidden"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    413: _l("Request too large"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
}


def _page(code: int, message=None):
    title = TITLES.get(code, TITLES[500] if code >= 500 else TITLES[400])
    return render_template("errors/error.html", code=code, name=title, message=message), code


def _size(limit: int) -> str:
    """A byte count for people: '2 MiB', '97 KiB'."""
    if limit >= 1 << 20 and limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    return f"{limit >> 10} KiB" if limit >= 1 << 10 else f"{limit} B"


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        if is_api_path(request.path):
            return http_error(exc)
        return _page(400, _l("This form has expired or did not come from this site. "
                             "Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if is_api_path(request.path):
            return http_exception_response(exc)
        if exc.code == 413:
            return _page(413, _l("The request is larger than the %(size)s this server accepts for its pages.",
                                 size=_size(current_app.config["MAX_CONTENT_LENGTH"])))
        response = _page(exc.code or 500)
        if exc.code == 405 and exc.valid_methods:
            return response[0], response[1], {"Allow": ", ".join(exc.valid_methods)}
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()  # a failed transaction must not break the error page or the next request
        if is_api_path(request.path):
            return internal_error_response()
        return _page(500)
