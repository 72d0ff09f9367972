"""Request-wide rules for the admin pages: setup gate, session lifetime, read-only auditors, security
headers."""
from __future__ import annotations

from flask import Flask, abort, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.accounts import service as accounts
from app.accounts import sessions
from app.client_ip import address_in_networks
from app.extensions import login_manager

# Paths the setup gate and the auditor rule never touch (the public API has its own auth).
API_PREFIXES = ("/v1", "/api/", "/chat/", "/completions", "/embeddings", "/models", "/messages", "/responses")
OPEN_PREFIXES = ("/static/", "/setup", "/healthz", "/readyz", "/metrics", "/language")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


# On every answer, the API's included (app.gateway.dispatch sets them on the answers it makes below Flask).
COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    # same-origin, not no-referrer: over HTTPS the CSRF check needs the Referer of our own forms.
    ("Referrer-Policy", "same-origin"),
)


class TrustedProxyScheme:
    """WSGI middleware: takes X-Forwarded-Proto (http/https) only from a PFORTE_TRUSTED_PROXIES address,
    so that behind a TLS-terminating proxy request.is_secure is true (Secure cookies, HSTS, CSRF check)."""

    def __init__(self, wsgi_app, trusted_proxies: str):
        self.wsgi_app = wsgi_app
        self.trusted_proxies = trusted_proxies

    def __call__(self, environ, start_response):
        proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
        if proto in ("http", "https") and address_in_networks(environ.get("REMOTE_ADDR", ""),
                                                              self.trusted_proxies):
            environ["wsgi.url_scheme"] = proto
        return self.wsgi_app(environ, start_response)


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came in over HTTPS, and names it with the
    __Host- prefix there (the browser then keeps it only for this host, Secure and on path /)."""

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def get_cookie_name(self, app):
        name = super().get_cookie_name(app)
        return f"__Host-{name}" if request.is_secure and not name.startswith("__Host-") else name


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def install_security(app: Flask) -> None:
    """Login manager, the setup gate, read-only auditors, security headers and the session cookie. The
    TrustedProxyScheme middleware is placed by the factory with the rest of the WSGI stack."""
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please log in to open this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(session_id: str):
        return accounts.user_for_session(session_id)

    @app.before_request
    def setup_gate():
        path = request.path
        if is_api_path(path) or path.startswith(OPEN_PREFIXES):
            return None
        if not accounts.owner_exists():
            return redirect(url_for("accounts.setup"))
        return None

    @app.before_request
    def session_lifetime():
        if not is_api_path(request.path) and not request.path.startswith("/static/"):
            sessions.enforce()

    @app.before_request
    def auditors_read_only():
        if request.method in ("GET", "HEAD", "OPTIONS") or is_api_path(request.path):
            return None
        if request.path in ("/logout", "/language") or request.path.startswith("/account/"):
            return None
        if getattr(current_user, "is_authenticated", False) and current_user.role == "auditor":
            abort(403)
        return None

    @app.after_request
    def security_headers(response):
        for name, value in COMMON_HEADERS:
            response.headers.setdefault(name, value)
        if not is_api_path(request.path):
            if not request.path.startswith("/static/"):
                response.headers["Cache-Control"] = "no-store"  # admin pages hold data of the organisation
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            if request.is_secure:
                response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            if request.headers.get("HX-Request") or response.mimetype == "text/html":
                response.vary.add("HX-Request")
        return response

    app.session_interface = HttpsAwareSessionInterface()
