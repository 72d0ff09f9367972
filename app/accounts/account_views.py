"""The user's own account: password, language and time zone (open to every role, auditors included)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required, login_user

from app.accounts import service
from app.accounts.blueprint import bp
from app.accounts.i18n import LANGUAGE_NAMES, LANGUAGES, timezone_names
from app.htmx import INVALID_FORM


def _account_page(error: str | None = None, status: int = 200, section: str | None = None):
    return render_template("accounts/account.html", error=error, error_section=section, languages=LANGUAGES,
                           language_names=LANGUAGE_NAMES, timezones=timezone_names()), status


@bp.route("/account")
@login_required
def account():
    return _account_page()


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password():
    form = request.form
    try:
        user = service.change_own_password(current_user._get_current_object(),
                                           form.get("current_password", ""), form.get("new_password", ""),
                                           form.get("new_password_confirm", ""))
    except service.AccountError as exc:
        return _account_page(str(exc), INVALID_FORM, "password")
    login_user(user)  # this session continues under the new session token; all others have ended
    flash(_("Your password was changed. Other sessions have been logged out."), "success")
    return redirect(url_for("accounts.account"))


@bp.route("/account/preferences", methods=["POST"])
@login_required
def change_preferences():
    try:
        service.set_preferences(current_user, request.form.get("language", ""),
                                request.form.get("timezone", ""))
    except service.AccountError as exc:
        return _account_page(str(exc), INVALID_FORM, "preferences")
    refresh()  # the confirmation already speaks the newly chosen language
    flash(_("Your preferences were saved."), "success")
    return redirect(url_for("accounts.account"))
