"""The client API's routes, answered below Flask.

Flask's request handling (request context, URL matching, session and login hooks, Flask-Limiter, Babel,
after-request hooks) cost more CPU per API call than the key check, the limits and the settlement put
together, and the API uses none of it: the pipeline reads the WSGI environ and needs only the app context
(configuration and database). So this WSGI middleware answers an API route (an exact path, else as
Flask's URL map matches it) itself, inside an app context; a call under an API prefix that matches no route gets its
JSON 404 or 405 here too, recorded in the request log like every API call. HEAD and OPTIONS (CORS
preflights) and every admin page go on to Flask.
"""
from __future__ import annotations

from collections.abc import Callable

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from app.accounts.security import COMMON_HEADERS, is_api_path
from app.gateway import pipeline
from app.gateway.errors import method_not_allowed, unknown_url
from app.gateway.routes import PREFIXES, ROUTES, add_api_headers


class ApiDispatcher:
    def __init__(self, app, fallback: Callable):
        self.app = app
        self.fallback = fallback
        self.exact: dict[str, tuple[str, Callable]] = {}  # path → (method, handler): the hot path
        for suffix, method, handler in ROUTES:
            if "<" not in suffix:
                for prefix in PREFIXES:
                    self.exact[prefix + suffix] = (method, handler)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD")
        route = self.exact.get(path)
        if route is not None and route[0] == method:
            handler, args = route[1], {}
        else:
            handler, args = self._match(environ, path, method)
            if handler is None:
                return self.fallback(environ, start_response)
        with self.app.app_context():
            response = handler(environ, **args)
            headers = response.headers
            add_api_headers(headers, environ)
            for name, value in COMMON_HEADERS:
                headers.setdefault(name, value)
            return response(environ, start_response)

    def _match(self, environ, path: str, method: str) -> tuple[Callable | None, dict]:
        """Anything but an exact API path (a model id in /v1/models/<id>, an admin page, a typo): Flask's
        URL map decides. A gateway route is answered here, and so is an API path that matches no route
        (404) or not with this method (405); HEAD, OPTIONS and everything else go on to Flask."""
        if method in ("HEAD", "OPTIONS"):
            return None, {}
        try:
            endpoint, args = self.app.url_map.bind_to_environ(environ).match()
        except NotFound:
            error = unknown_url(method, _decoded(path))
        except MethodNotAllowed as exc:
            error = method_not_allowed(method, _decoded(path), ", ".join(exc.valid_methods or ()))
        except HTTPException:  # a redirect (doubled or missing slash): Flask answers it
            return None, {}
        else:
            handler = getattr(self.app.view_functions.get(endpoint), "api_handler", None)
            return handler, args
        if not is_api_path(path):
            return None, {}
        return pipeline.refuse, {"error": error}


def _decoded(path: str) -> str:
    """PATH_INFO as Werkzeug shows it (the WSGI server decodes the bytes as latin-1)."""
    return path.encode("latin-1").decode("utf-8", "replace")
