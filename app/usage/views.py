"""Usage pages: the dashboard with its CSV exports, one key's recent activity, and the retention setting."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_babel import format_decimal, format_number
from flask_babel import gettext as _
from flask_login import login_required

from app.accounts.access import owner_required
from app.credits import MICRO
from app.htmx import INVALID_FORM, render
from app.usage import export as exports
from app.usage import reports
from app.usage import retention as keeping
from app.usage.charts import daily_charts
from app.usage.filters import UsageInputError, parse_filter

bp = Blueprint("usage", __name__)


@bp.app_template_filter("credits")
def credits_filter(micro: int | None) -> str:
    """Micro-credits as credits for display (up to 4 decimals, locale formatting)."""
    return format_decimal((micro or 0) / MICRO, format="#,##0.####")


@bp.app_template_filter("count")
def count_filter(value: int | float | None) -> str:
    return format_number(value or 0)


def _dashboard(status: int = 200, retention_error: str | None = None):
    usage_filter, errors = parse_filter(request.args)
    dash = reports.dashboard(usage_filter)
    return render("usage/dashboard.html", "usage/_dashboard.html", status, dash=dash, errors=errors,
                  charts=daily_charts(dash.daily), retention_days=keeping.retention_days(),
                  retention_error=retention_error)


@bp.route("/usage")
@login_required
def dashboard():
    return _dashboard()


@bp.route("/usage/export.csv")
@login_required
def export():
    usage_filter, errors = parse_filter(request.args)
    table = request.args.get("table", "daily")
    try:
        if errors:
            raise UsageInputError(" ".join(errors))
        text = exports.export_csv(usage_filter, table)
    except UsageInputError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{exports.export_filename(usage_filter, table)}"'})


@bp.route("/usage/retention", methods=["POST"])
@owner_required
def retention():
    try:
        days = keeping.set_retention_days(request.form.get("retention_days", ""))
    except UsageInputError as exc:
        return _dashboard(INVALID_FORM, retention_error=str(exc))
    flash(_("Request logs are now kept for %(days)d days.", days=days), "success")
    return redirect(url_for("usage.dashboard"))


@bp.route("/usage/keys/<public_id>")
@login_required
def key_activity(public_id: str):
    try:
        activity = reports.key_activity(public_id)
    except reports.UnknownKey:
        abort(404)
    return render("usage/key_activity.html", "usage/_key_activity.html", activity=activity)
