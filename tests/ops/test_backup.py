"""`pforte backup` of a live SQLite instance under load, then `pforte restore` into the stopped instance:
every key still verifies and no request-log row is lost."""
from __future__ import annotations

import sqlite3
import threading
import time

import requests
from support.opskit import auth, create_key, post_chat, query
from support.processes import run_cli
from support.waiting import wait_until


def chat_load(server, keys: list[str], stop: threading.Event, done: list, errors: list) -> None:
    """Send chat requests round-robin until stop is set; note (request id, finish time) of each success."""
    session = requests.Session()
    i = 0
    while not stop.is_set():
        key = keys[i % len(keys)]
        i += 1
        try:
            answer = post_chat(server, key, f"Frage {i}", session)
        except requests.RequestException as exc:
            errors.append(repr(exc))
            continue
        if answer.status_code == 200:
            done.append((answer.headers["x-request-id"], time.monotonic()))
        else:
            errors.append(f"{answer.status_code} {answer.text[:200]}")


def request_ids(path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT request_id FROM request_logs")}
    finally:
        conn.close()


def test_backup_under_load_then_restore_keeps_every_key_and_log_row(gateway, tmp_path):
    instance = tmp_path / "instance-under-load"
    server, first = gateway(instance=instance, env={"PFORTE_RATELIMIT_PER_IP": "100000/minute"})
    keys = [first["key"]] + [create_key(server, f"system {n}")["key"] for n in range(3)]

    stop, done, errors = threading.Event(), [], []
    workers = [threading.Thread(target=chat_load, args=(server, keys, stop, done, errors)) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(done) >= 40, 60, lambda: f"the load to get going (errors: {errors[:3]})")
        backup_started = time.monotonic()
        backup = tmp_path / "pforte-backup.db"
        result = server.cli("backup", str(backup))
        backup_finished = time.monotonic()
        served_during_backup = [rid for rid, t in done if backup_started <= t <= backup_finished]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert not errors, errors[:5]
    assert served_during_backup, "the server must keep answering while the backup runs"
    assert "Backup written to" in result.stdout

    in_backup = request_ids(backup)
    before_backup = {rid for rid, t in done if t < backup_started}
    missing = before_backup - in_backup
    assert not missing, f"{len(missing)} rows done before the backup are missing"

    # The server still runs: restore refuses and changes nothing.
    refused = run_cli(instance, "restore", str(backup), check=False)
    assert refused.returncode != 0 and "Stop it first" in refused.stderr
    server.stop()

    live_ids = request_ids(instance / "pforte.db")
    assert len(live_ids) >= len(in_backup)
    run_cli(instance, "restore", str(backup))
    assert request_ids(instance / "pforte.db") == in_backup, "the restored log is the backup's, row for row"
    kept = list(instance.glob("pforte.db.before-restore-*"))
    assert len(kept) == 1 and request_ids(kept[0]) == live_ids, "the replaced database is kept"

    server.start()
    for key in keys:
        answer = requests.get(f"{server.url}/v1/models", headers=auth(key), timeout=10)
        assert answer.status_code == 200, answer.text
    rows = query(server, "SELECT count(*) AS n FROM request_logs")
    assert rows[0]["n"] >= len(in_backup)


def test_backup_refuses_to_overwrite_anything_but_an_earlier_backup(tmp_path):
    instance = tmp_path / "inst"
    run_cli(instance, "init")
    victim = tmp_path / "notes.txt"
    victim.write_text("precious")
    refused = run_cli(instance, "backup", str(victim), check=False)
    assert refused.returncode != 0 and "exists already" in refused.stderr
    refused = run_cli(instance, "backup", "--replace", str(victim), check=False)
    assert refused.returncode != 0 and "not a SQLite database" in refused.stderr
    assert victim.read_text() == "precious"

    backup = tmp_path / "b.db"
    run_cli(instance, "backup", str(backup))
    assert (backup.stat().st_mode & 0o777) == 0o600
    run_cli(instance, "backup", "--replace", str(backup))


def test_restore_refuses_a_file_that_is_not_a_pforte_backup(tmp_path):
    instance = tmp_path / "inst"
    run_cli(instance, "init")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = run_cli(instance, "restore", str(other), check=False)
    assert result.returncode != 0 and "not an intact Pforte database" in result.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"no database at all" * 100)
    result = run_cli(instance, "restore", str(garbage), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert not list(instance.glob("pforte.db.before-restore-*")), "nothing was touched"


def test_backup_of_a_postgresql_instance_points_to_pg_dump(tmp_path):
    instance = tmp_path / "inst"
    instance.mkdir()
    result = run_cli(instance, "backup", str(tmp_path / "x.db"), check=False,
                     env={"PFORTE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert result.returncode != 0 and "pg_dump" in result.stderr
