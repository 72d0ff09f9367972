"""The organisation settings page (blueprint "settings"): the monthly credit allowance and the per-IP limit
that the policy enforces, and this month's usage against the allowance. The values live in app.settings;
everyone signed in reads the page, only owners change it."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.accounts.access import owner_required
from app.htmx import INVALID_FORM, is_htmx, render
from app.policy import service as policy
from app.settings import service as settings
from app.settings.service import OrgSettings

bp = Blueprint("settings", __name__)


@dataclass(frozen=True)
class Overview:
    """What the settings page shows."""

    settings: OrgSettings
    default_per_ip: str
    period: str
    used_micro: int
    reserved_micro: int


def overview() -> Overview:
    used, reserved, period = policy.org_usage()
    return Overview(settings.current(), settings.default_per_ip(), period, used, reserved)


def _render(form: dict | None = None, errors: dict | None = None, status: int = 200, saved: bool = False):
    view = overview()
    if form is None:
        form = {"allowance": settings.format_credits(view.settings.allowance_micro),
                "per_ip_count": view.settings.per_ip_count or "", "per_ip_unit": view.settings.per_ip_unit}
    return render("settings/index.html", "settings/_form.html", status, view=view, form=form,
                  errors=errors or {}, units=settings.UNITS, can_edit=current_user.is_owner, saved=saved,
                  keep_default=settings.keep_conversations_default(),
                  retention_days=current_app.config["PFORTE_CONVERSATION_RETENTION_DAYS"])


@bp.route("/settings")
@login_required
def index():
    return _render()


@bp.route("/settings", methods=["POST"])
@owner_required
def update():
    form = {name: request.form.get(name, "") for name in ("allowance", "per_ip_count", "per_ip_unit")}
    try:
        policy.update_org_settings(form["allowance"], form["per_ip_count"], form["per_ip_unit"])
    except settings.SettingsError as exc:
        return _render(form, exc.errors, INVALID_FORM)
    if is_htmx():
        return _render(saved=True)
    flash(_("The settings were saved."), "success")
    return redirect(url_for("settings.index"))


@bp.route("/settings/conversations", methods=["POST"])
@owner_required
def keep_conversations():
    keep = request.form.get("keep_conversations") == "on"
    settings.set_keep_conversations_default(keep)
    flash(_("Keys without their own choice now keep conversations.") if keep else
          _("Keys without their own choice no longer keep conversations."), "success")
    return redirect(url_for("settings.index"))
