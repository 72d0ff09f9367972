"""The audit page and its CSV export (readable by every logged-in role)."""
from __future__ import annotations

from flask import Blueprint, Response, request, stream_with_context
from flask_login import login_required

from app.audit import chain, service
from app.audit.export import csv_lines
from app.audit.filters import page_number, parse_filters
from app.database import utcnow
from app.htmx import is_htmx, render

bp = Blueprint("audit", __name__)


@bp.route("/audit")
@login_required
def index():
    audit_filter, values, errors = parse_filters(request.args)
    page = service.page_of_events(audit_filter, page_number(request.args.get("page")))
    rows = [(event, service.changes(event)) for event in page.events]
    query = {name: value for name, value in values.items() if value}
    status = None if is_htmx() else service.chain_status()  # the fragment does not show it
    return render("audit/index.html", "audit/_events.html", page=page, rows=rows, filters=values,
                  query=query, errors=errors, actions=service.known_actions(), chain=status,
                  chain_message=chain.describe(status) if status else "")


@bp.route("/audit.csv")
@login_required
def export():
    audit_filter, values, errors = parse_filters(request.args)
    if errors:
        return Response("\n".join(errors) + "\n", status=400, mimetype="text/plain")
    service.record_now("audit.export", target_type="audit", after={k: v for k, v in values.items() if v})
    lines = csv_lines(service.iter_events(audit_filter))
    response = Response(stream_with_context(lines), mimetype="text/csv")
    filename = f"pforte-audit-{utcnow():%Y%m%d-%H%M%S}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
