"""CSV exports of the usage dashboard's tables."""
from __future__ import annotations

import csv
import io

from flask_babel import lazy_gettext as _l

from app.audit import service as audit
from app.credits import MICRO
from app.usage.filters import UsageFilter, UsageInputError
from app.usage.reports import daily, monthly, statuses, top_keys, top_models

EXPORTS = {
    "daily": (_l("Day"), daily),
    "keys": (_l("Key"), top_keys),
    "models": (_l("Model"), top_models),
    "statuses": (_l("HTTP status"), statuses),
    "monthly": (_l("Month"), monthly),
}
CSV_INJECTION_START = ("=", "+", "-", "@", "\t", "\r")


def export_csv(f: UsageFilter, table: str) -> str:
    """One dashboard table as CSV text (credits as decimal credits), recorded in the audit trail.
    Unknown table → UsageInputError."""
    if table not in EXPORTS:
        raise UsageInputError(str(_l("Unknown export %(name)s.", name=table)))
    label, build = EXPORTS[table]
    rows = build(f, limit=10_000) if build in (top_keys, top_models) else build(f)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [str(label), "requests", "errors", "input_tokens", "output_tokens", "total_tokens", "credits"]
    if table == "keys":
        header.insert(1, "key_id")
    writer.writerow(header)
    for row in rows:
        line = [_csv_safe(row.label), row.requests, row.errors, row.input_tokens, row.output_tokens,
                row.tokens, f"{row.credits_micro / MICRO:.6f}"]
        if table == "keys":
            line.insert(1, row.ref or "")
        writer.writerow(line)
    audit.record_now("usage.export", target_type="usage", after={"table": table, **f.query_args()})
    return out.getvalue()


def _csv_safe(text: str) -> str:
    """Neutralise cells a spreadsheet would run as a formula (key names are chosen by admins)."""
    return "'" + text if text.startswith(CSV_INJECTION_START) else text


def export_filename(f: UsageFilter, table: str) -> str:
    return f"pforte-usage-{table}-{f.start.isoformat()}-{f.end.isoformat()}.csv"
