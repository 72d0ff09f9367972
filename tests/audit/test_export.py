"""CSV export of the audit trail: same filters as the page, UTC times, safe against CSV injection."""
from __future__ import annotations

import csv
import io
import json

from app.audit.export import safe_cell


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="pforte-audit-')
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def record(app, action: str, **fields) -> None:
    from app.audit import service
    from app.extensions import db

    with app.app_context():
        service.record(action, **fields)
        db.session.commit()


def test_csv_has_the_filtered_events_with_utc_times(app, client_as):
    record(app, "key.create", actor="anna", target_type="key", target_id=3, target_name="DMS",
           after={"name": "DMS", "secret_hash": "abc123"})
    record(app, "key.revoke", actor="anna", target_type="key", target_id=3, target_name="DMS")
    rows = read_csv(client_as("auditor").get("/audit.csv?action=key.create"))
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == ["time_utc", "actor", "action", "target_type", "target_id", "target", "ip",
                         "before", "after"]
    assert (row["actor"], row["action"], row["target_type"], row["target_id"], row["target"]) == \
        ("anna", "key.create", "key", "3", "DMS")
    assert row["time_utc"].endswith("Z") and len(row["time_utc"]) == 20
    assert json.loads(row["after"]) == {"name": "DMS", "secret_hash": "[redacted]"}


def test_csv_cells_cannot_become_formulas(app, client_as):
    for n, evil in enumerate(["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB"]):
        record(app, "key.rename", actor=evil, target_name=evil, target_id=n)
    rows = read_csv(client_as("owner").get("/audit.csv?action=key.rename"))
    assert len(rows) == 5
    for row in rows:
        assert row["actor"].startswith("'") and row["target"].startswith("'")
        assert row["actor"][1:] in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB"]


def test_safe_cell_leaves_ordinary_text_alone():
    assert safe_cell("Anna Müller") == "Anna Müller"
    assert safe_cell(None) == ""
    assert safe_cell(42) == "42"
    assert safe_cell("a=b") == "a=b"


def test_csv_with_a_bad_date_is_refused_with_a_message(client_as):
    response = client_as("owner").get("/audit.csv?date_to=yesterday")
    assert response.status_code == 400
    assert "The end date must look like 2025-01-31." in response.get_data(as_text=True)


def test_csv_of_many_events_streams_every_row(app, client_as):
    from app.audit.models import AuditEvent
    from app.extensions import db

    with app.app_context():
        db.session.add_all(AuditEvent(action="bulk.test", actor_name="robot", target_name=f"t{n}")
                           for n in range(1200))
        db.session.commit()
    rows = read_csv(client_as("owner").get("/audit.csv?action=bulk.test"))
    assert len(rows) == 1200
    assert {row["target"] for row in rows} == {f"t{n}" for n in range(1200)}
