"""Keys pages: the list with filter, search and pages; create, edit, disable, enable and revoke.

Every page has a real URL and works without JavaScript (forms POST, then redirect or render). HTMX
requests get fragments: the table, a row, or a dialog swapped into #dialog-slot. A new key's plaintext
is rendered once, in the answer to the POST that created it, and never again.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytz
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_timezone, to_user_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.accounts.access import edit_required
from app.accounts.redirects import local_target
from app.catalog import service as catalog
from app.catalog.demo import is_demo_entry
from app.credits import MICRO
from app.htmx import INVALID_FORM, is_htmx, render
from app.keys import conversation_fields, inputs, service
from app.keys.context import credits_used
from app.keys.validation import LIMIT_FIELDS

bp = Blueprint("keys", __name__)

STATUS_LABELS = {"active": _l("Active"), "disabled": _l("Disabled"), "revoked": _l("Revoked"),
                 "expired": _l("Expired")}
FILTER_LABELS = {"all": _l("All"), **STATUS_LABELS}
SCOPE_LABELS = {"full": _l("Full access"), "llm": _l("Models only (LLM)"), "read": _l("Read only")}
SCOPE_BADGES = {"llm": _l("LLM only"), "read": _l("Read only")}
LIMIT_LABELS = {"rpm": _l("%(n)s per minute"), "rph": _l("%(n)s per hour"),
                "monthly_requests": _l("%(n)s per month"), "max_concurrent": _l("%(n)s at once")}


@bp.context_processor
def helpers():
    return {
        "key_status": service.display_status,
        "status_label": lambda status: STATUS_LABELS.get(status, status),
        "filter_labels": FILTER_LABELS,
        "scope_labels": SCOPE_LABELS,
        "scope_badge": lambda scope: SCOPE_BADGES.get(scope),
        "limit_texts": _limit_texts,
        "credits": _credits,
        "credits_used": credits_used,
        "split_list": service.split_list,
        "activity_url": _activity_url,
        **conversation_fields.template_helpers(),
    }


def _activity_url(key) -> str | None:
    """The usage page of one key, where the usage domain offers it."""
    if "usage.key_activity" not in current_app.view_functions:
        return None
    return url_for("usage.key_activity", public_id=key.public_id)


def _credits(micro: int | None) -> str:
    """Micro-credits as a plain decimal string without trailing zeros ('12.5')."""
    if micro is None:
        return ""
    whole, fraction = divmod(micro, MICRO)
    return f"{whole}.{fraction:06d}".rstrip("0").rstrip(".")


def _limit_texts(key) -> list[str]:
    return [str(label) % {"n": getattr(key, field)} for field, label in LIMIT_LABELS.items()
            if getattr(key, field) is not None]


def _timezone():
    return get_timezone() or pytz.UTC


def _tomorrow() -> str:
    return (datetime.now(_timezone()).date() + timedelta(days=1)).isoformat()


def _found(public_id: str):
    try:
        return service.get_key(public_id)
    except service.KeyNotFound:
        abort(404)


def _list_url(status: str = "all", search: str = "", page: int = 1) -> str:
    return url_for("keys.index", status=None if status == "all" else status, q=search or None,
                   page=page if page > 1 else None)


def _next_url(source=None) -> str:
    """Where a plain form POST (or a dialog's Cancel link, from the query) returns to: the list as the
    admin left it (only /keys URLs of this site)."""
    target = local_target((request.form if source is None else source).get("next"))
    if target and urlsplit(target).path == url_for("keys.index"):
        return target
    return url_for("keys.index")


def _no_store(response):
    """The response, marked so that browsers and proxies do not keep it (it holds a plaintext key)."""
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------------ list


@bp.route("/keys")
@login_required
def index():
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    listing = service.list_keys(request.args.get("status", "all"), request.args.get("q", ""), page)
    context = {"listing": listing, "list_url": _list_url, "self_url": _list_url(
        listing.status, listing.search, listing.page)}
    if not is_htmx():  # the page around the table
        context["enabled_models"] = catalog.enabled_model_count()
        context["models_url"] = url_for("catalog.index") if "catalog.index" in current_app.view_functions else None
    return render("keys/index.html", "keys/_table.html", **context)


# ------------------------------------------------------------------------------------------ create, edit


def _date_shown(key) -> str:
    """The key's expiry as the date the form shows (admin's time zone), '' for none."""
    return to_user_timezone(key.expires_at).date().isoformat() if key.expires_at else ""


def _form_values(key=None) -> dict:
    """The strings the create/edit form shows: the submitted ones, the key's, or the defaults."""
    if request.method == "POST":
        return {**request.form.to_dict(), "models": request.form.getlist("models")}
    if key is None:
        return {"scope": "full", "models": []}
    values = {"name": key.name, "expires": _date_shown(key), "scope": key.scope,
              "models": service.split_list(key.allowed_models),
              "allowed_cidrs": "\n".join(service.split_list(key.allowed_cidrs)),
              "quota": _credits(key.quota_micro), "quota_monthly": "on" if key.quota_monthly else "",
              **conversation_fields.form_values(key)}
    values.update({field: "" if getattr(key, field) is None else str(getattr(key, field))
                   for field in LIMIT_FIELDS})
    return values


def _model_choices() -> list[dict]:
    """The catalog's models ({"id", "name", "enabled", "demo"}) for the allow-list checkboxes."""
    return [{"id": entry.public_id, "name": entry.display_name, "enabled": entry.enabled,
             "demo": is_demo_entry(entry)} for entry in catalog.list_models(enabled_only=False)]


def _render_form(key, errors: dict | None = None):
    values = _form_values(key)
    choices = _model_choices()
    # ids allowed earlier that the catalog no longer has stay visible (and ticked)
    known = {choice["id"] for choice in choices}
    choices += [{"id": model, "name": None, "enabled": None}
                for model in values.get("models", []) if model not in known]
    context = {"key": key, "values": values, "errors": errors or {}, "model_choices": choices,
               "min_expiry": _tomorrow()}
    return render("keys/key_form.html", "keys/_key_dialog.html", INVALID_FORM if errors else 200, **context)


def _submitted_values(key) -> dict:
    """The posted form as typed values. On errors, the service's checks run on the readable fields too,
    so that the admin sees every problem at once. An unchanged expiry date is left alone."""
    unchanged_expiry = key is not None and request.form.get("expires", "") == _date_shown(key)
    try:
        return inputs.values_from_form(request.form, _timezone(), include_expiry=not unchanged_expiry)
    except service.KeyInputError as exc:
        errors = exc.errors
        try:
            service.clean_values(exc.partial, creating=key is None, current=key)
        except service.KeyInputError as more:
            errors = {**more.errors, **errors}
        raise service.KeyInputError(errors) from None


@bp.route("/keys/new", methods=["GET", "POST"])
@edit_required
def new():
    if request.method == "GET":
        return _render_form(None)
    try:
        values = _submitted_values(None)
        key, plaintext = service.create_key(actor=None, created_by_id=current_user.id, **values)
    except service.KeyInputError as exc:
        return _render_form(None, exc.errors)
    response = _no_store(render("keys/created.html", "keys/_created.html", key=key, plaintext=plaintext))
    if is_htmx():
        response.headers["HX-Trigger"] = "keys-changed"
    return response


@bp.route("/keys/<public_id>/edit", methods=["GET", "POST"])
@edit_required
def edit(public_id: str):
    key = _found(public_id)
    if request.method == "GET":
        return _render_form(key)
    try:
        service.update_key(public_id, _submitted_values(key))
    except service.KeyInputError as exc:
        return _render_form(key, exc.errors)
    return _done(_("Key “%(name)s” saved.", name=key.name))


# --------------------------------------------------------------------------------- disable, enable, revoke


@bp.route("/keys/<public_id>/disable", methods=["POST"])
@edit_required
def disable(public_id: str):
    return _change_status(public_id, service.disable_key, _("Key “%(name)s” disabled."))


@bp.route("/keys/<public_id>/enable", methods=["POST"])
@edit_required
def enable(public_id: str):
    return _change_status(public_id, service.enable_key, _("Key “%(name)s” enabled."))


def _change_status(public_id: str, change, message: str):
    _found(public_id)
    try:
        key = change(public_id)
    except service.KeyInputError as exc:
        if is_htmx():
            abort(409)
        flash(" ".join(exc.errors.values()), "error")
        return redirect(_next_url())
    if is_htmx():
        return render_template("keys/_row.html", key=key, next_url=_next_url())
    flash(message % {"name": key.name}, "success")
    return redirect(_next_url())


@bp.route("/keys/<public_id>/revoke", methods=["GET", "POST"])
@edit_required
def revoke(public_id: str):
    key = _found(public_id)
    if request.method == "GET":
        return render("keys/revoke.html", "keys/_revoke_dialog.html", key=key,
                      next_url=_next_url(request.args))
    service.revoke_key(public_id)
    return _done(_("Key “%(name)s” revoked. Requests with it are refused from now on.", name=key.name))


def _done(message: str):
    """After a change made in a dialog: HTMX closes the dialog and refreshes the table; else redirect."""
    if is_htmx():
        return "", 200, {"HX-Trigger": "keys-changed"}
    flash(message, "success")
    return redirect(_next_url())
