"""Health, readiness and metrics endpoints."""
from flask import Blueprint, jsonify

bp = Blueprint("ops", __name__)


@bp.route("/healthz")
def healthz():
    return jsonify({"status": "ok"})
