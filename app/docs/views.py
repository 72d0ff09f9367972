"""Pages for integrators: "Use the API" (browser-stored key, ready-to-paste examples), the streaming
playground, the API docs, and the OpenAPI document at /v1/openapi.json.

The pages are public (an integrator needs a key, not an admin account); only signed-in admins get the
catalog's model ids and the assistants pre-filled. The key itself lives in the browser's localStorage (static/usekey.js)
and only ever travels to /v1 as the API credential.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import force_locale
from flask_login import current_user

from app.assistants import cache as assistants
from app.catalog import service as catalog
from app.catalog.demo import demo_model_ids, is_demo_model
from app.docs.openapi import ERRORS, RATE_LIMIT_HEADERS, openapi_document

bp = Blueprint("docs", __name__)
bp.add_app_template_global(is_demo_model)  # marks demo models "demo" in every model list of the UI


WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def api_base_url() -> str:
    """The client base URL shown in docs and examples, e.g. https://pforte.example/v1: PFORTE_PUBLIC_URL
    (with /v1 added unless it ends so); unset, the address this server listens on (a wildcard address as
    localhost). Never the request's Host header, which any client chooses."""
    public = current_app.config.get("PFORTE_PUBLIC_URL")
    if not public:
        host, port = current_app.config.get("PFORTE_SERVED_AT") or (current_app.config["PFORTE_HOST"],
                                                                     current_app.config["PFORTE_PORT"])
        host = "localhost" if host in WILDCARD_HOSTS else host
        public = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    return public if public.endswith("/v1") else f"{public}/v1"


def _signed_in() -> bool:
    return bool(getattr(current_user, "is_authenticated", False))


def _catalog_model_ids() -> list[str]:
    """Enabled model ids, then enabled assistant ids, for signed-in admins (anonymous visitors get the
    key's models and assistants from /v1/models)."""
    if not _signed_in():
        return []
    return [entry.public_id for entry in catalog.list_models()] + \
        [assistant.public_id for assistant in assistants.enabled_assistants()]


def _model_context() -> dict:
    """The model select's options, and the demo models' ids so that the page can mark them "demo" also in
    the list it loads for the stored key (only built-in demo models are named to anonymous visitors)."""
    return {"model_ids": _catalog_model_ids(), "demo_ids": demo_model_ids()}


@bp.route("/use")
def use_api():
    return render_template("docs/use.html", base_url=api_base_url(), **_model_context(),
                           assistants=assistants.enabled_assistants() if _signed_in() else [])


@bp.route("/playground")
def playground():
    return render_template("docs/playground.html", base_url=api_base_url(), **_model_context(),
                           expected_prefix=(request.args.get("prefix") or "")[:32])


@bp.route("/docs")
def api_docs():
    return render_template("docs/api.html", base_url=api_base_url(), errors=ERRORS,
                           rate_limit_headers=RATE_LIMIT_HEADERS)


@bp.route("/v1/openapi.json")
def openapi_json():
    with force_locale("en"):
        document = openapi_document(api_base_url())
    response = jsonify(document)
    response.headers["Cache-Control"] = "no-cache"
    return response
