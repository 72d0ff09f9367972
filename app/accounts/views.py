"""Setup, login, logout and language choice."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.accounts import service
from app.accounts.i18n import LANGUAGE_COOKIE, LANGUAGES

bp = Blueprint("accounts", __name__)


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if service.owner_exists():
        return redirect(url_for("accounts.login"))
    error = None
    if request.method == "POST":
        token = request.form.get("token", "")
        if not hmac.compare_digest(token.strip(), current_app.config["PFORTE_SETUP_TOKEN"]):
            error = _("The setup token is not correct. It was printed by 'pforte init'.")
        elif request.form.get("password") != request.form.get("password_confirm"):
            error = _("The passwords do not match.")
        else:
            try:
                user = service.create_user(request.form.get("username", ""), request.form.get("password", ""), "owner")
            except service.AccountError as exc:
                error = str(exc)
            else:
                login_user(user)
                return redirect(url_for("keys.index"))
    return render_template("accounts/setup.html", error=error), (400 if error else 200)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        user = service.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            error = _("Unknown user name or wrong password.")
        else:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("keys.index"))
    return render_template("accounts/login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    return redirect(url_for("accounts.login"))


@bp.route("/language", methods=["POST"])
def set_language():
    language = request.form.get("language")
    response = redirect(_safe_next(request.form.get("next")) or "/")
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, httponly=True, samesite="Lax")
        if current_user.is_authenticated:
            service.set_language(current_user, language)
    return response


@bp.route("/")
def home():
    return redirect(url_for("keys.index"))


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None
