"""Answering HTMX: the fragment to an HTMX request, the full page to any other, and one status for a form
post with invalid input.

`templates/base.html` tells htmx to swap 2xx answers and 422, and to leave the page alone on every other
4xx/5xx. A form with errors therefore answers INVALID_FORM (422) with its messages, as a fragment or a
page, so that the admin sees them whether or not JavaScript runs.
"""
from __future__ import annotations

from flask import Response, make_response, render_template, request

INVALID_FORM = 422


def is_htmx() -> bool:
    """An htmx request that swaps part of the page (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def render(full: str, fragment: str, status: int = 200, /, **context) -> Response:
    """The fragment template for an HTMX request, else the full page (which includes the fragment).

    Both answers share one URL, so the response varies on HX-Request for caches."""
    response = make_response(render_template(fragment if is_htmx() else full, **context), status)
    response.vary.add("HX-Request")
    return response
