"""The audit trail's hash chain: intact under writers in two processes at once, and a row changed, deleted
or slipped in directly in the database is found at the right event by `pforte audit verify` and the
audit page."""
from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from support.database import fresh_database_url
from support.processes import CliWorker, run_cli

KEYS_PER_WRITER = 30


@pytest.fixture
def instance(tmp_path):
    """(instance folder, env) of an initialised instance with a fresh database (PostgreSQL when configured)."""
    folder = tmp_path / "instance"
    folder.mkdir()
    with fresh_database_url(folder) as url:
        env = {"PFORTE_DATABASE_URL": url}
        run_cli(folder, "init", env=env)
        yield folder, env


def sql(env, statement: str, **params) -> list:
    engine = sa.create_engine(env["PFORTE_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def verify(folder, env) -> tuple[int, dict]:
    result = run_cli(folder, "audit", "verify", "--json", env=env, check=False)
    return result.returncode, json.loads(result.stdout)


def create_keys(folder, env, count: int, prefix: str = "k") -> None:
    worker = CliWorker(folder, env)
    try:
        for n in range(count):
            worker.run("keys", "create", "--name", f"{prefix}-{n}")
    finally:
        worker.close()


def event_ids(env) -> list[int]:
    return [row[0] for row in sql(env, "SELECT id FROM audit_events ORDER BY id")]


def test_two_processes_writing_at_once_leave_an_intact_chain(instance):
    folder, env = instance
    errors: list[str] = []

    def writer(name: str) -> None:
        try:
            create_keys(folder, env, KEYS_PER_WRITER, name)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))

    writers = [threading.Thread(target=writer, args=(name,)) for name in ("left", "right")]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=300)
    assert errors == []
    created = sql(env, "SELECT count(*) FROM audit_events WHERE action = 'key.create'")[0][0]
    assert created == 2 * KEYS_PER_WRITER
    total = len(event_ids(env))
    seqs = [row[0] for row in sql(env, "SELECT seq FROM audit_events ORDER BY seq")]
    assert seqs == list(range(1, total + 1))
    code, report = verify(folder, env)
    assert (code, report["intact"], report["events"], report["first_broken_id"]) == (0, True, total, None)
    text = run_cli(folder, "audit", "verify", env=env).stdout
    assert f"The audit trail is intact: all {total} events are unchanged and complete." in text


def test_a_row_changed_in_the_database_breaks_the_chain_at_that_event(instance):
    folder, env = instance
    create_keys(folder, env, 5)
    ids = event_ids(env)
    assert verify(folder, env)[0] == 0
    sql(env, "UPDATE audit_events SET target_name = 'harmless' WHERE id = :id", id=ids[2])
    code, report = verify(folder, env)
    assert code == 1
    assert (report["intact"], report["problem"], report["first_broken_id"]) == (False, "changed", ids[2])
    assert report["last_intact_id"] == ids[1]
    text = run_cli(folder, "audit", "verify", env=env, check=False)
    assert text.returncode == 1
    assert (f"The audit trail is broken at event #{ids[2]}: the event was changed after it was recorded."
            in text.stdout)


def test_a_changed_hash_is_found_at_the_event_after_it(instance):
    folder, env = instance
    create_keys(folder, env, 4)
    ids = event_ids(env)
    sql(env, "UPDATE audit_events SET action = 'key.rename', hash = :h WHERE id = :id", id=ids[1], h="f" * 64)
    code, report = verify(folder, env)
    assert (code, report["first_broken_id"]) == (1, ids[1])  # its content no longer matches
    assert report["problem"] == "changed"


def test_a_deleted_row_breaks_the_chain_at_the_next_event(instance):
    folder, env = instance
    create_keys(folder, env, 5)
    ids = event_ids(env)
    sql(env, "DELETE FROM audit_events WHERE id = :id", id=ids[3])
    code, report = verify(folder, env)
    assert code == 1
    assert (report["problem"], report["first_broken_id"], report["last_intact_id"]) == \
        ("missing_before", ids[4], ids[2])


def test_a_deleted_newest_row_is_noticed(instance):
    folder, env = instance
    create_keys(folder, env, 3)
    ids = event_ids(env)
    sql(env, "DELETE FROM audit_events WHERE id = :id", id=ids[-1])
    code, report = verify(folder, env)
    assert (code, report["problem"], report["last_intact_id"]) == (1, "missing_newest", ids[-2])
    assert f"broken after event #{ids[-2]}: the newest events are missing" in report["message"]


def test_a_row_slipped_in_directly_is_noticed(instance):
    folder, env = instance
    create_keys(folder, env, 2)
    sql(env, "INSERT INTO audit_events (created_at, actor_name, action) VALUES (CURRENT_TIMESTAMP, 'x', 'key.create')")
    slipped = event_ids(env)[-1]
    code, report = verify(folder, env)
    assert (code, report["problem"], report["first_broken_id"]) == (1, "unchained", slipped)


def test_the_chain_goes_on_after_a_deleted_head_row(instance):
    folder, env = instance
    create_keys(folder, env, 2)
    sql(env, "DELETE FROM audit_chain_head")
    create_keys(folder, env, 2, "later")
    code, report = verify(folder, env)
    assert (code, report["intact"]) == (0, True)


def test_the_audit_page_says_whether_the_chain_is_intact(app, client_as):
    from app.extensions import db

    owner = client_as("owner")
    html = owner.get("/audit").get_data(as_text=True)
    assert "The audit trail is intact: all" in html
    with app.app_context():
        first = db.session.execute(sa.text("SELECT min(id) FROM audit_events")).scalar()
        db.session.execute(sa.text("UPDATE audit_events SET actor_name = 'someone else' WHERE id = :id"),
                           {"id": first})
        db.session.commit()
    html = owner.get("/audit").get_data(as_text=True)
    assert (f"The audit trail is broken at event #{first}: the event was changed after it was recorded."
            in html)
    german = owner.get("/audit", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert f"#{first}" in german and "The audit trail is broken" not in german


def test_the_migration_chains_the_events_recorded_before_it(tmp_path):
    from flask_migrate import upgrade

    from app import create_app
    from app.audit import chain
    from app.extensions import db

    folder = tmp_path / "older"
    with fresh_database_url(folder) as url:
        app = create_app({"INSTANCE_PATH": str(folder), "PFORTE_DATABASE_URL": url, "TESTING": True})
        with app.app_context():
            upgrade(revision="0002")
            for n in range(5):
                db.session.execute(sa.text(
                    "INSERT INTO audit_events (created_at, actor_name, action, target_id, after) "
                    "VALUES (:at, 'anna', 'key.create', :n, :after)"),
                    {"at": f"2026-01-0{n + 1} 10:00:00.123456", "n": str(n), "after": '{"name": "k"}'})
            db.session.commit()
            upgrade()
            report = chain.verify()
            assert (report.intact, report.events) == (True, 5)
            db.session.execute(sa.text("UPDATE audit_events SET actor_name = 'bernd' WHERE target_id = '3'"))
            db.session.commit()
            broken = chain.verify()
            assert (broken.problem, broken.events) == ("changed", 3)
            db.session.remove()
            db.engine.dispose()
