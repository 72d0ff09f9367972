"""Assistant pages: the list, add, edit, disable and enable. Owners and admins edit, auditors read."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from app.accounts.access import edit_required
from app.assistants import service
from app.catalog import service as catalog
from app.htmx import INVALID_FORM

bp = Blueprint("assistants", __name__, url_prefix="/assistants")

FORM_FIELDS = ("public_id", "display_name", "model_id", "instructions", "temperature", "max_output_tokens",
               "tools")


def _found(public_id: str):
    try:
        return service.get(public_id)
    except service.AssistantNotFound:
        abort(404)


@bp.route("")
@login_required
def index():
    return render_template("assistants/index.html", assistants=service.list_assistants())


def _values_of(assistant) -> dict:
    tools = service.tools_of(assistant)
    return {"public_id": assistant.public_id, "display_name": assistant.display_name,
            "model_id": assistant.model_id, "instructions": assistant.instructions,
            "temperature": "" if assistant.temperature is None else f"{assistant.temperature:g}",
            "max_output_tokens": assistant.max_output_tokens or "",
            "tools": json.dumps(tools, indent=2, ensure_ascii=False) if tools else ""}


def _form(assistant=None, values=None, errors=None):
    values = values if values is not None else (_values_of(assistant) if assistant else {})
    return render_template("assistants/form.html", assistant=assistant, values=values, errors=errors or {},
                           models=catalog.list_models(enabled_only=False)), (INVALID_FORM if errors else 200)


def _typed(form: dict, errors: dict) -> dict:
    """The posted strings → the service's typed values; unreadable numbers go to `errors`."""
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    for name, kind, message in (("temperature", float, _("The temperature is a number from 0 to 2.")),
                                ("max_output_tokens", int, _("The output cap is a whole number of at least 1."))):
        text = str(values[name]).strip().replace(",", ".") if kind is float else str(values[name]).strip()
        try:
            values[name] = kind(text) if text else None
        except ValueError:
            errors[name] = message
            values[name] = None
    return values


def _save(save, assistant=None):
    """The saved assistant, or the form again with every problem (unreadable numbers and the service's)."""
    errors: dict[str, str] = {}
    values = _typed(request.form, errors)
    try:
        if errors:
            readable = {k: v for k, v in values.items() if k not in errors and (assistant is None or k != "public_id")}
            service.clean_values(readable, creating=assistant is None)
            return _form(assistant, dict(request.form), errors)
        return save(values)
    except service.AssistantInputError as exc:
        return _form(assistant, dict(request.form), {**exc.errors, **errors})


@bp.route("/new", methods=["GET", "POST"])
@edit_required
def new():
    if request.method == "GET":
        return _form()
    result = _save(lambda values: service.add(values, enabled=request.form.get("enabled") == "1"))
    if isinstance(result, tuple):
        return result
    flash(_("Assistant “%(id)s” added.", id=result.public_id), "success")
    return redirect(url_for("assistants.index"))


@bp.route("/<path:public_id>/edit", methods=["GET", "POST"])
@edit_required
def edit(public_id: str):
    assistant = _found(public_id)
    if request.method == "GET":
        return _form(assistant)
    result = _save(lambda values: service.update(public_id, {k: v for k, v in values.items() if k != "public_id"}),
                   assistant)
    if isinstance(result, tuple):
        return result
    flash(_("Assistant “%(id)s” saved.", id=public_id), "success")
    return redirect(url_for("assistants.index"))


@bp.route("/<path:public_id>/enabled", methods=["POST"])
@edit_required
def set_enabled(public_id: str):
    _found(public_id)
    enabled = request.form.get("enabled") == "1"
    service.set_enabled(public_id, enabled)
    flash(_("Assistant “%(id)s” enabled.", id=public_id) if enabled else
          _("Assistant “%(id)s” disabled. Its keys get “model not found” until it is enabled again.", id=public_id),
          "success")
    return redirect(url_for("assistants.index"))
