"""The client API's routes, answered below Flask.

Flask's request handling (request context, URL matching, session and login hooks, Flask-Limiter, Babel,
after-request hooks) cost more CPU per API call than the key check, the limits and the settlement put
together, and the API uses none of it: the pipeline reads the WSGI environ and needs only the app context
(configuration and database). So this WSGI middleware answers an API route (exact path and method, or
`…/models/<id>`) itself, inside an app context, and passes everything else on to Flask: other methods
(HEAD, OPTIONS preflights, wrong methods for a 405), unknown paths (JSON 404) and every admin page.
"""
from __future__ import annotations

from collections.abc import Callable

from app.gateway.routes import PREFIXES, ROUTES, add_api_headers

# What app.accounts.security adds to API answers that Flask serves.
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))


class ApiDispatcher:
    def __init__(self, app, fallback: Callable):
        self.app = app
        self.fallback = fallback
        self.exact: dict[str, tuple[str, Callable]] = {}
        self.by_prefix: list[tuple[str, str, Callable]] = []  # "…/models/" routes, whose rest is a model id
        for suffix, method, handler in ROUTES:
            for prefix in PREFIXES:
                if suffix.endswith("/"):
                    self.by_prefix.append((prefix + suffix, method, handler))
                else:
                    self.exact[prefix + suffix] = (method, handler)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        args: tuple = ()
        route = self.exact.get(path)
        if route is None:
            route, args = self._with_argument(path)
        if route is None or environ.get("REQUEST_METHOD") != route[0]:
            return self.fallback(environ, start_response)
        with self.app.app_context():
            response = route[1](environ, *args)
            headers = response.headers
            add_api_headers(headers, environ)
            for name, value in SECURITY_HEADERS:
                headers.setdefault(name, value)
            return response(environ, start_response)

    def _with_argument(self, path: str) -> tuple[tuple[str, Callable] | None, tuple]:
        """`…/models/<id>`: the id is the rest of the path (it may hold `/` and `:`), decoded as Werkzeug
        does; like Werkzeug's path converter, an empty id or one starting with `/` is no match."""
        for prefix, method, handler in self.by_prefix:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if rest and not rest.startswith("/"):
                    return (method, handler), (rest.encode("latin-1").decode("utf-8", "replace"),)
        return None, ()
