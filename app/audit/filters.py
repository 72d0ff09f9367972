"""The audit filters as they arrive in the query string (shared by the page and the CSV export).
Dates are days in the admin's time zone; the filter holds the matching UTC bounds."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from flask_babel import to_utc

from app.audit.service import AuditFilter

FIELDS = ("action", "actor", "target", "date_from", "date_to")


def _day_start(text: str, errors: list[str], message: str) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(message)
        return None
    return datetime.combine(day, time())


def parse_filters(args) -> tuple[AuditFilter, dict[str, str], list[str]]:
    """(filter, the values to show in the form and links, error messages). A bad value is reported and
    left out of the filter; the rest still applies."""
    values = {name: (args.get(name) or "").strip()[:200] for name in FIELDS}
    errors: list[str] = []
    since = _day_start(values["date_from"], errors, _("The start date must look like 2025-01-31."))
    until = _day_start(values["date_to"], errors, _("The end date must look like 2025-01-31."))
    if until is not None:
        until += timedelta(days=1)  # the end day is included
    if since and until and since >= until:
        errors.append(_("The start date must not lie after the end date."))
        since = until = None
    audit_filter = AuditFilter(action=values["action"], actor=values["actor"], target=values["target"],
                               since=to_utc(since) if since else None, until=to_utc(until) if until else None)
    return audit_filter, values, errors


def page_number(text: str | None) -> int:
    try:
        return max(1, int(text or 1))
    except ValueError:
        return 1
