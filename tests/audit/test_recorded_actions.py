"""Actions that change nothing but still belong in the audit trail: connection tests, usage and audit
exports, a wrong current password, wrong setup tokens, and the CLI's backup, restore and purges."""
from __future__ import annotations

import json
import sqlite3

import pytest
from support.processes import run_cli
from support.web import csrf_token, post_form


def only(events: list[dict]) -> dict:
    assert len(events) == 1, events
    return events[0]


def test_a_connection_test_is_recorded(app, client_as, audit_log):
    from app.catalog import service

    with app.app_context():
        connection = service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        connection_id = connection.id
    admin = client_as("admin", name="ada")
    response = post_form(admin, f"/catalog/connections/{connection_id}/test", page="/catalog")
    assert response.status_code == 200
    event = only(audit_log("connection.test"))
    assert (event["actor_name"], event["target_type"], event["target_id"], event["target_name"]) == \
        ("ada", "connection", str(connection_id), "demo")
    assert json.loads(event["after"])["ok"] is True
    assert event["ip"] == "127.0.0.1"


def test_usage_and_audit_exports_are_recorded_with_their_filters(client_as, audit_log):
    auditor = client_as("auditor", name="otto")
    assert auditor.get("/usage/export.csv?table=keys&start=2025-04-01&end=2025-04-30").status_code == 200
    usage = only(audit_log("usage.export"))
    assert usage["actor_name"] == "otto"
    assert json.loads(usage["after"]) == {"table": "keys", "start": "2025-04-01", "end": "2025-04-30"}
    response = auditor.get("/audit.csv?action=key.create&actor=anna")
    assert response.status_code == 200
    response.get_data()
    audit = only(audit_log("audit.export"))
    assert audit["actor_name"] == "otto"
    assert json.loads(audit["after"])["action"] == "key.create"
    assert json.loads(audit["after"])["actor"] == "anna"


def test_a_refused_export_is_not_recorded(client_as, audit_log):
    auditor = client_as("auditor")
    assert auditor.get("/audit.csv?date_to=yesterday").status_code == 400
    assert audit_log("audit.export") == []


def test_a_wrong_current_password_is_recorded(client_as, audit_log):
    client = client_as("admin", name="ida")
    form = {"current_password": "wrong", "new_password": "ida-new-password",
            "new_password_confirm": "ida-new-password"}
    assert post_form(client, "/account/password", form).status_code == 422
    event = only(audit_log("account.password_confirm_failure"))
    assert (event["actor_name"], event["target_name"], event["ip"]) == ("ida", "ida", "127.0.0.1")
    assert "wrong" not in json.dumps(event, default=str)


def test_wrong_setup_tokens_are_recorded(app, client, audit_log):
    form = {"username": "anna", "password": "a-long-password", "password_confirm": "a-long-password",
            "token": "guess-1", "csrf_token": csrf_token(client, "/setup")}
    response = client.post("/setup", data=form, environ_base={"REMOTE_ADDR": "10.0.7.1"})
    assert response.status_code == 422
    event = only(audit_log("setup.failure"))
    assert (event["actor_name"], event["ip"]) == ("anna", "10.0.7.1")
    assert "guess-1" not in json.dumps(event, default=str)
    right = {**form, "token": app.config["PFORTE_SETUP_TOKEN"], "csrf_token": csrf_token(client, "/setup")}
    assert client.post("/setup", data=right, environ_base={"REMOTE_ADDR": "10.0.7.1"}).status_code == 302
    assert len(audit_log("setup.failure")) == 1


@pytest.fixture
def sqlite_instance(tmp_path):
    """An initialised instance on SQLite (backups are for SQLite only): (folder, env)."""
    folder = tmp_path / "instance-sqlite"
    folder.mkdir()
    env = {"PFORTE_DATABASE_URL": f"sqlite:///{folder / 'pforte.db'}"}
    run_cli(folder, "init", env=env)
    return folder, env


def events_in(path, action: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM audit_events WHERE action = ? ORDER BY id",
                                                  (action,))]
    finally:
        conn.close()


def test_cli_backup_and_restore_are_recorded(sqlite_instance, tmp_path):
    folder, env = sqlite_instance
    database = folder / "pforte.db"
    backup = tmp_path / "copy.db"
    run_cli(folder, "backup", str(backup), env=env)
    event = only(events_in(database, "backup.create"))
    assert event["actor_name"] == "cli" and json.loads(event["after"])["file"] == str(backup.resolve())
    run_cli(folder, "restore", str(backup), env=env)
    restored = only(events_in(database, "backup.restore"))
    assert restored["actor_name"] == "cli" and json.loads(restored["after"])["file"] == str(backup.resolve())
    assert run_cli(folder, "audit", "verify", env=env).returncode == 0


def test_cli_purges_are_recorded(app, instance_path, database_url, audit_log):
    env = {"PFORTE_DATABASE_URL": database_url}
    run_cli(instance_path, "usage", "purge", "--days", "30", env=env)
    usage = only(audit_log("usage.purge"))
    assert usage["actor_name"] == "cli"
    assert json.loads(usage["after"]) == {"days": 30, "removed": 0}
    run_cli(instance_path, "conversations", "purge", "--all", env=env)
    conversations = only(audit_log("conversations.purge"))
    assert conversations["actor_name"] == "cli"
    assert json.loads(conversations["after"]) == {"deleted": 0, "scope": "all"}
