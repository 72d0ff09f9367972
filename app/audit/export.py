"""CSV export of the audit trail. Cells a spreadsheet would run as a formula get a leading quote."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from app.audit.models import AuditEvent

HEADER = ("time_utc", "actor", "action", "target_type", "target_id", "target", "ip", "before", "after")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # lets spreadsheet programs read the file as UTF-8 (umlauts in names)


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _row(event: AuditEvent) -> list[str]:
    values = (event.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), event.actor_name, event.action,
              event.target_type, event.target_id, event.target_name, event.ip, event.before, event.after)
    return [safe_cell(value) for value in values]


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then one CSV line per event, as text chunks ready to stream."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    yield BOM + buffer.getvalue()
    for event in events:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(_row(event))
        yield buffer.getvalue()
