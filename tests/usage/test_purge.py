"""Retention: old request-log rows are deleted (by the CLI and by `pforte serve` once a day); the monthly
totals survive."""
from __future__ import annotations

import sqlite3
from datetime import timedelta

from support.processes import run_cli
from support.waiting import wait_until

from app.database import utcnow


def _counts(app):
    from app.extensions import db
    from app.usage.models import RequestLog, UsageMonthly

    with app.app_context():
        return db.session.query(RequestLog).count(), db.session.query(UsageMonthly).count()


def _ages(app) -> list[int]:
    from app.extensions import db
    from app.usage.models import RequestLog

    now = utcnow()
    with app.app_context():
        return sorted((now - row.created_at).days for row in db.session.query(RequestLog))


def _monthly(now) -> list[tuple]:
    """The monthly totals of the 24 months up to now."""
    from app.usage import filters, reports

    month = filters.UsageFilter(now.date() - timedelta(days=30), now.date())
    return [(r.label, r.requests, r.input_tokens, r.credits_micro) for r in reports.monthly(month, 24)]


def test_purge_removes_rows_older_than_the_retention_period_and_keeps_monthly_totals(app, make_key):
    from app.extensions import db
    from app.usage import reports, retention
    from app.usage.settle import RequestRecord, settle_request

    key_id, public_id = make_key("K")
    now = utcnow()
    with app.app_context():
        for days in (0, 10, 89, 91, 200, 400):
            record = RequestRecord(request_id=f"r{days}", endpoint="chat", status=200, key_id=key_id,
                                   model="m", input_tokens=days, output_tokens=1, credits_micro=1000 + days)
            settle_request(db.engine, record, now=now - timedelta(days=days, hours=1))
        before = _monthly(now)

        assert retention.retention_days() == 90  # the default
        assert retention.purge_request_logs() == 3
    assert _ages(app) == [0, 10, 89]

    with app.app_context():
        retention.set_retention_days(7)
        assert retention.purge_request_logs() == 2
        assert retention.purge_request_logs() == 0
        after = _monthly(now)
        activity = reports.key_activity(public_id)
    assert _ages(app) == [0]
    assert after == before and sum(r[1] for r in after) >= 5  # the 400-day-old month may be out of range
    assert activity.month_total.requests >= 1 and len(activity.recent) == 1


def test_purge_works_in_batches(app, make_key, log_request, monkeypatch):
    from app.usage import retention

    monkeypatch.setattr(retention, "PURGE_BATCH", 2)
    key_id, _ = make_key("K")
    for days in range(100, 105):
        log_request(utcnow() - timedelta(days=days), key_id, "m")
    with app.app_context():
        assert retention.purge_request_logs() == 5
    assert _counts(app)[0] == 0


def test_cli_purge_uses_the_setting_or_days(app, instance_path, database_url, make_key, log_request,
                                            add_monthly):
    key_id, _ = make_key("K")
    now = utcnow()
    for days in (1, 20, 120):
        log_request(now - timedelta(days=days), key_id, "m")
    add_monthly("2020-01", key_id, "m", requests=1, micro=1)
    env = {"PFORTE_DATABASE_URL": database_url}

    result = run_cli(instance_path, "usage", "purge", env=env)
    assert "Removed 1 request-log rows older than 90 days" in result.stdout
    result = run_cli(instance_path, "usage", "purge", "--days", "10", env=env)
    assert "Removed 1 request-log rows older than 10 days" in result.stdout
    assert _counts(app) == (1, 1)

    refused = run_cli(instance_path, "usage", "purge", "--days", "0", env=env, check=False)
    assert refused.returncode != 0 and "0" in refused.stderr
    shown = run_cli(instance_path, "usage", "retention", "45", env=env)
    assert "kept for 45 days" in shown.stdout
    bad = run_cli(instance_path, "usage", "retention", "forever", env=env, check=False)
    assert bad.returncode != 0 and "whole number" in bad.stderr


def test_serve_purges_on_its_own(tmp_path, live_server_factory):
    """`pforte serve` runs the purge in the background (first run after PFORTE_PURGE_DELAY_SECONDS)."""
    instance = tmp_path / "purging"
    instance.mkdir()
    run_cli(instance, "init")
    database = instance / "pforte.db"
    old = (utcnow() - timedelta(days=365)).isoformat(sep=" ")
    recent = (utcnow() - timedelta(days=1)).isoformat(sep=" ")
    with sqlite3.connect(database) as conn:
        for when in (old, old, recent):
            conn.execute("INSERT INTO request_logs (created_at, request_id, endpoint, stream, status,"
                         " input_tokens, output_tokens, credits_micro, usage_estimated)"
                         " VALUES (?, 'r', 'chat', 0, 200, 0, 0, 0, 0)", (when,))
        conn.execute("INSERT INTO usage_monthly (month, model, requests, errors, input_tokens, output_tokens,"
                     " credits_micro) VALUES ('2020-01', 'm', 2, 0, 0, 0, 0)")

    live_server_factory(env={"PFORTE_PURGE_DELAY_SECONDS": "0", "PFORTE_DATABASE_URL": f"sqlite:///{database}"},
                        instance=instance)

    def counts() -> tuple[int, int] | None:
        with sqlite3.connect(database) as conn:
            remaining = conn.execute("SELECT count(*) FROM request_logs").fetchone()[0]
            monthly = conn.execute("SELECT count(*) FROM usage_monthly").fetchone()[0]
        return (remaining, monthly) if remaining == 1 else None

    remaining, monthly = wait_until(counts, 20, "the background purge", interval=0.1)
    assert remaining == 1 and monthly == 1
