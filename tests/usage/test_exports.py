"""CSV exports of the dashboard tables, as downloaded through the real routes."""
from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def data(make_key, log_request):
    portal, portal_public = make_key("Portal")
    formula, formula_public = make_key("=HYPERLINK(\"http://evil\")")
    log_request(datetime(2025, 4, 1, 10, 0), portal, "m1", input=10, output=20, micro=1_250_000)
    log_request(datetime(2025, 4, 1, 11, 0), portal, "m2", status=500, error_code="internal_error")
    log_request(datetime(2025, 4, 3, 10, 0), formula, "m1", input=1, output=1, micro=3)
    return {"portal": portal_public, "formula": formula_public}


def test_daily_csv_has_one_row_per_day_with_exact_credits(client_as, data):
    admin = client_as("admin")
    rows = _csv(admin.get("/usage/export.csv?table=daily&start=2025-04-01&end=2025-04-03"))
    assert rows[0] == ["Day", "requests", "errors", "input_tokens", "output_tokens", "total_tokens",
                       "credits"]
    assert rows[1:] == [
        ["2025-04-01", "2", "1", "10", "20", "30", "1.250000"],
        ["2025-04-02", "0", "0", "0", "0", "0", "0.000000"],
        ["2025-04-03", "1", "0", "1", "1", "2", "0.000003"],
    ]


def test_keys_csv_names_keys_and_neutralises_formulas(client_as, data):
    auditor = client_as("auditor")  # auditors read usage too
    response = auditor.get("/usage/export.csv?table=keys&start=2025-04-01&end=2025-04-30")
    rows = _csv(response)
    assert "attachment" in response.headers["Content-Disposition"]
    assert rows[0][:2] == ["Key", "key_id"]
    by_id = {row[1]: row for row in rows[1:]}
    assert by_id[data["portal"]][0] == "Portal" and by_id[data["portal"]][2] == "2"
    assert by_id[data["formula"]][0] == "'=HYPERLINK(\"http://evil\")"


def test_exports_follow_the_filters(client_as, data):
    admin = client_as("admin")
    month = "start=2025-04-01&end=2025-04-30"
    rows = _csv(admin.get(f"/usage/export.csv?table=models&{month}&key={data['portal']}"))
    assert sorted(row[0] for row in rows[1:]) == ["m1", "m2"]
    rows = _csv(admin.get("/usage/export.csv?table=statuses&start=2025-04-01&end=2025-04-30&model=m2"))
    assert rows[1:] == [["500", "1", "1", "0", "0", "0", "0.000000"]]


def test_monthly_csv_reads_the_kept_totals(client_as, make_key, add_monthly):
    key_id, _ = make_key("K")
    add_monthly("2025-03", key_id, "m", requests=4, micro=7_000_000, input=3, output=4)
    rows = _csv(client_as("admin").get("/usage/export.csv?table=monthly&start=2025-03-01&end=2025-03-31"))
    assert rows[1:] == [["2025-03", "4", "0", "3", "4", "7", "7.000000"]]


def test_bad_export_requests_get_a_clear_400(client_as):
    admin = client_as("admin")
    unknown = admin.get("/usage/export.csv?table=passwords")
    assert unknown.status_code == 400 and "Unknown export" in unknown.get_data(as_text=True)
    bad_date = admin.get("/usage/export.csv?table=daily&start=notadate")
    assert bad_date.status_code == 400 and "2025-01-31" in bad_date.get_data(as_text=True)


def test_exports_need_a_login(client, owner):
    response = client.get("/usage/export.csv?table=daily")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
