"""The users page: everyone logged in sees the list; owners create, disable, enable, reset and re-role."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.accounts import service
from app.accounts.access import owner_required
from app.accounts.blueprint import bp
from app.accounts.models import ROLES
from app.htmx import INVALID_FORM, is_htmx, render


def _users_page(error: str | None = None, message: str | None = None, status: int = 200, form=None):
    return render("accounts/users.html", "accounts/_users.html", status, users=service.list_users(),
                  roles=ROLES, error=error, message=message, form=form or {})


def _done(message: str):
    """After a change: the refreshed fragment for HTMX, else back to the page (post/redirect/get)."""
    if is_htmx():
        return _users_page(message=message)
    flash(message, "success")
    return redirect(url_for("accounts.users"))


def _run(change, message: str, form=None):
    try:
        user = change()
    except service.UserNotFound:
        abort(404)
    except service.AccountError as exc:
        return _users_page(error=str(exc), status=INVALID_FORM, form=form)
    return _done(message % {"name": user.username})


@bp.route("/users")
@login_required
def users():
    return _users_page()


@bp.route("/users", methods=["POST"])
@owner_required
def create_user():
    form = request.form
    return _run(lambda: service.create_user(form.get("username", ""), form.get("password", ""),
                                            form.get("role", "")),
                _("User %(name)s was created."), form={"username": form.get("username", ""),
                                                       "role": form.get("role", "")})


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@owner_required
def disable_user(user_id: int):
    return _run(lambda: service.set_disabled(user_id, True, current_user), _("User %(name)s was disabled."))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@owner_required
def enable_user(user_id: int):
    return _run(lambda: service.set_disabled(user_id, False, current_user), _("User %(name)s was enabled."))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@owner_required
def change_role(user_id: int):
    role = request.form.get("role", "")
    return _run(lambda: service.change_role(user_id, role, current_user),
                _("The role of %(name)s was changed."))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@owner_required
def reset_password(user_id: int):
    password = request.form.get("password", "")
    return _run(lambda: service.reset_password(user_id, password, current_user),
                _("A new password was set for %(name)s. Their sessions have ended."))
