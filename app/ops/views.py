"""Health, readiness and metrics endpoints for load balancers and Prometheus.

/healthz is open (the process answers). /readyz and /metrics answer only clients inside
PFORTE_METRICS_ALLOW (default: loopback) or with `Authorization: Bearer PFORTE_METRICS_TOKEN`.
"""
from flask import Blueprint, Response, abort, current_app, jsonify, request

from app.client_ip import request_client_ip
from app.ops import metrics, service

bp = Blueprint("ops", __name__)


def _require_monitoring_access() -> None:
    config = current_app.config
    allowed = service.monitoring_allowed(
        request_client_ip(),
        request.headers.get("Authorization"),
        str(config.get("PFORTE_METRICS_ALLOW") or ""),
        str(config.get("PFORTE_METRICS_TOKEN") or ""),
    )
    if not allowed:
        abort(403)


@bp.route("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.route("/readyz")
def readyz():
    _require_monitoring_access()
    ready, checks = service.readiness()
    response = jsonify({"status": "ready" if ready else "not ready", **checks})
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/metrics")
def metrics_text():
    _require_monitoring_access()
    response = Response(metrics.render(), mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response
