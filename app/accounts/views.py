"""Setup, login, logout and language choice (routes of the accounts blueprint, app.accounts.blueprint)."""
from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.accounts import service, sessions
from app.accounts.blueprint import bp
from app.accounts.i18n import LANGUAGE_COOKIE, LANGUAGES
from app.accounts.redirects import local_target
from app.client_ip import request_client_ip
from app.extensions import limiter
from app.htmx import INVALID_FORM

# A hard cap on login/setup posts per IP, so that even refused attempts cannot flood the audit trail.
POSTS_PER_IP = "30/minute"


def _throttled(exc: service.LoginThrottled) -> tuple[str, int, dict]:
    """(message, status, headers) for a refused attempt."""
    message = _("Too many failed attempts from this address or for this user name. "
                "Try again in %(seconds)d seconds.", seconds=exc.retry_after)
    return message, 429, {"Retry-After": str(exc.retry_after)}


def _start_session(user) -> None:
    session.clear()  # nothing from before the login survives (no session fixation)
    login_user(user)
    sessions.begin()


@bp.route("/setup", methods=["GET", "POST"])
@limiter.limit(POSTS_PER_IP, key_func=request_client_ip, methods=["POST"], scope="account-posts")
def setup():
    if service.owner_exists():
        return redirect(url_for("accounts.login"))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        form = request.form
        try:
            user = service.setup_owner(form.get("token", ""), form.get("username", ""),
                                       form.get("password", ""), form.get("password_confirm", ""),
                                       request_client_ip())
        except service.LoginThrottled as exc:
            error, status, headers = _throttled(exc)
        except service.AccountError as exc:
            error, status = str(exc), INVALID_FORM
        else:
            _start_session(user)
            return redirect(url_for("keys.index"))
    return render_template("accounts/setup.html", error=error), status, headers


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(POSTS_PER_IP, key_func=request_client_ip, methods=["POST"], scope="account-posts")
def login():
    target = local_target(request.args.get("next")) or url_for("keys.index")
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(target)
    error, status, headers = None, 200, {}
    if request.method == "POST":
        try:
            user = service.log_in(request.form.get("username", ""), request.form.get("password", ""),
                                  request_client_ip())
        except service.LoginThrottled as exc:
            error, status, headers = _throttled(exc)
        else:
            if user is not None:
                _start_session(user)
                return redirect(target)
            error, status = _("Unknown user name or wrong password."), 401
    return render_template("accounts/login.html", error=error), status, headers


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    service.log_out(current_user)
    logout_user()
    session.clear()
    return redirect(url_for("accounts.login"))


@bp.route("/language", methods=["POST"])
def set_language():
    language = request.form.get("language")
    response = redirect(local_target(request.form.get("next")) or "/")
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=request.is_secure)
        if current_user.is_authenticated:
            service.set_language(current_user, language)
    return response


@bp.route("/")
def home():
    return redirect(url_for("keys.index"))

