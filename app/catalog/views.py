"""Catalog pages: connections and models. Owners and admins edit, auditors read.

HTMX requests get fragments (a table row, a test result); normal requests get full pages or a redirect.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from app.accounts.access import edit_required
from app.catalog import service
from app.catalog.models import CAPABILITIES, CONNECTION_KINDS
from app.htmx import INVALID_FORM, is_htmx, render

bp = Blueprint("catalog", __name__, url_prefix="/catalog")

CONNECTION_FIELDS = service.CONNECTION_FIELDS
MODEL_FIELDS = ("public_id", "display_name", "upstream_model", "input_price", "output_price",
                "max_output_tokens")


KIND_LABELS = {"openai": _l("OpenAI-compatible"), "azure": _l("Azure OpenAI"), "anthropic": _l("Anthropic"),
               "demo": _l("Demo (built in, no network)")}
CAPABILITY_LABELS = {"chat": _l("chat"), "embeddings": _l("embeddings"), "tools": _l("tools"),
                     "vision": _l("vision")}


@bp.context_processor
def labels():
    return {"kind_label": lambda kind: KIND_LABELS.get(kind, kind),
            "capability_label": lambda name: CAPABILITY_LABELS.get(name, name)}


def _plain(value):
    """Numbers as a form shows them: 120 rather than 120.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _found(getter, item_id: int):
    try:
        return getter(item_id)
    except service.CatalogNotFound:
        abort(404)


@bp.route("")
@login_required
def index():
    connections, models = service.overview()
    return render_template("catalog/index.html", connections=connections, models=models,
                           enabled_count=sum(1 for m in models if m.enabled))


# --- connections ---------------------------------------------------------------------------------

def _connection_form(connection=None, values=None, errors=None):
    if values is None:
        values = {name: _plain(getattr(connection, name)) for name in CONNECTION_FIELDS} if connection else {}
    return render_template("catalog/connection_form.html", connection=connection, values=values,
                           errors=errors or {}, kinds=CONNECTION_KINDS), (INVALID_FORM if errors else 200)


@bp.route("/connections/new", methods=["GET", "POST"])
@edit_required
def new_connection():
    if request.method == "GET":
        return _connection_form(values={"kind": request.args.get("kind", "openai")})
    values = {name: request.form.get(name, "") for name in CONNECTION_FIELDS}
    try:
        connection = service.create_connection(values, credential=request.form.get("credential"))
    except service.CatalogError as exc:
        return _connection_form(values=values, errors=exc.errors)
    return _back(f"connection-{connection.id}", _("Connection “%(name)s” added.", name=connection.name))


@bp.route("/connections/<int:connection_id>/edit", methods=["GET", "POST"])
@edit_required
def edit_connection(connection_id: int):
    connection = _found(service.get_connection, connection_id)
    if request.method == "GET":
        return _connection_form(connection)
    values = {name: request.form.get(name, "") for name in CONNECTION_FIELDS}
    try:
        service.update_connection(connection_id, values, credential=request.form.get("credential"),
                                  clear_credential=request.form.get("clear_credential") == "1",
                                  owner=current_user.is_owner)
    except service.CatalogError as exc:
        return _connection_form(_found(service.get_connection, connection_id), values, exc.errors)
    message = _("Connection “%(name)s” saved.", name=values["name"].strip())
    return _back(f"connection-{connection_id}", message)


@bp.route("/connections/<int:connection_id>/delete", methods=["GET", "POST"])
@edit_required
def delete_connection(connection_id: int):
    name = _found(service.get_connection, connection_id).name
    return _confirm_delete("connection", name, lambda: service.delete_connection(connection_id),
                           _("Connection “%(name)s” deleted.", name=name))


@bp.route("/connections/<int:connection_id>/test", methods=["POST"])
@edit_required
def test_connection(connection_id: int):
    connection = _found(service.get_connection, connection_id)
    name = connection.name
    result = service.test_connection(connection_id)
    return render("catalog/probe.html", "catalog/_probe_result.html", result=result, connection_name=name,
                  connection_id=connection_id)


# --- models --------------------------------------------------------------------------------------

def _model_form(model=None, values=None, errors=None):
    if values is None:
        values = {name: _plain(getattr(model, name)) for name in MODEL_FIELDS} if model else {}
        values["connection_id"] = model.connection_id if model else request.args.get("connection", type=int)
        values["capabilities"] = model.capabilities.split(",") if model else list(CAPABILITIES)
        values["enabled"] = model.enabled if model else True
    connections = service.list_connections()
    return render_template("catalog/model_form.html", model=model, values=values, errors=errors or {},
                           connections=connections, capabilities=CAPABILITIES), (INVALID_FORM if errors else 200)


def _model_values() -> dict:
    values = {name: request.form.get(name, "") for name in MODEL_FIELDS}
    values["connection_id"] = request.form.get("connection_id", type=int)
    values["capabilities"] = request.form.getlist("capabilities")
    values["enabled"] = request.form.get("enabled") == "1"
    return values


@bp.route("/models/new", methods=["GET", "POST"])
@edit_required
def new_model():
    if request.method == "GET":
        return _model_form()
    values = _model_values()
    try:
        model = service.create_model(values, values["connection_id"], values["capabilities"],
                                     enabled=values["enabled"])
    except service.CatalogError as exc:
        return _model_form(values=values, errors=exc.errors)
    return _back(f"model-{model.id}", _("Model “%(id)s” added.", id=model.public_id))


@bp.route("/models/<int:model_id>/edit", methods=["GET", "POST"])
@edit_required
def edit_model(model_id: int):
    model = _found(service.get_model, model_id)
    if request.method == "GET":
        return _model_form(model)
    values = _model_values()
    try:
        service.update_model(model_id, values, values["connection_id"], values["capabilities"])
    except service.CatalogError as exc:
        return _model_form(_found(service.get_model, model_id), values, exc.errors)
    return _back(f"model-{model_id}", _("Model “%(id)s” saved.", id=values["public_id"].strip()))


@bp.route("/models/<int:model_id>/enabled", methods=["POST"])
@edit_required
def set_model_enabled(model_id: int):
    try:
        model = service.set_model_enabled(model_id, request.form.get("enabled") == "1")
    except service.CatalogNotFound:
        abort(404)
    if is_htmx():
        return render_template("catalog/_model_row.html", model=model)
    if model.enabled:
        return _back(f"model-{model_id}", _("Model “%(id)s” enabled.", id=model.public_id))
    return _back(f"model-{model_id}", _("Model “%(id)s” disabled.", id=model.public_id))


@bp.route("/models/<int:model_id>/delete", methods=["GET", "POST"])
@edit_required
def delete_model(model_id: int):
    public_id = _found(service.get_model, model_id).public_id
    return _confirm_delete("model", public_id, lambda: service.delete_model(model_id),
                           _("Model “%(id)s” deleted.", id=public_id))


def _confirm_delete(what: str, name: str, delete, done_message: str):
    """GET: the confirmation page; POST: delete, then back to the catalog with the outcome."""
    if request.method == "GET":
        return render_template("catalog/confirm_delete.html", what=what, name=name, action=request.path)
    try:
        delete()
    except service.CatalogError as exc:
        flash(" ".join(exc.errors.values()), "error")
        return redirect(url_for("catalog.index"))
    return _back("", done_message)


def _back(anchor: str, message: str):
    flash(message, "success")
    return redirect(url_for("catalog.index", _anchor=anchor or None))
