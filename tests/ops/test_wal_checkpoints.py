"""SQLite's write-ahead log is checkpointed by a background thread, never inside a request's commit."""
from __future__ import annotations

import logging
import os
import sqlite3
import threading

import gevent
from sqlalchemy import create_engine, text
from support.waiting import wait_until

from app import rawsql
from app.ops.wal import WalCheckpointer, start_wal_checkpoints


def _insert_rows(engine, count: int) -> None:
    for number in range(count):
        with rawsql.RawTransaction(engine) as transaction:
            transaction.execute_sql("INSERT INTO notes (body) VALUES (?)", (f"note {number} " + "x" * 200,))


def test_commits_leave_the_checkpoint_to_the_background_thread(tmp_path):
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    empty_size = os.path.getsize(path)
    checkpoints = start_wal_checkpoints(engine, interval_seconds=0.05)
    try:
        connection = rawsql.sqlite_connections(engine).get()
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0

        _insert_rows(engine, 1500)  # well past SQLite's automatic checkpoint at 1000 pages of log
        assert os.path.getsize(path) == empty_size  # no commit copied the log into the database file
        assert os.path.getsize(f"{path}-wal") > 1000 * 4096

        # gevent.sleep lets the checkpoint greenlet run
        wait_until(lambda: os.path.getsize(path) != empty_size, 10, "a checkpoint", 0.02, gevent.sleep)
        assert os.path.getsize(path) > 1500 * 200  # the rows (200 bytes each at least) are in the file now
        rows = connection.execute("SELECT count(*) FROM notes").fetchone()[0]
        assert rows == 1500
    finally:
        checkpoints.kill()
        engine.dispose()


class HeldCheckpointer(WalCheckpointer):
    """A real checkpointer whose checkpoint waits in its native thread until the test lets it go."""

    def __init__(self, path):
        super().__init__(path)
        self.started = threading.Event()
        self.release = threading.Event()
        self.outcome = None

    def checkpoint(self):
        self.started.set()
        self.release.wait(10)
        try:
            self.outcome = super().checkpoint()
        except sqlite3.Error as exc:
            self.outcome = exc
        return self.outcome


def _wait_for(flag: threading.Event) -> None:
    # The hub must run (gevent.sleep) to hand the task to the pool thread.
    wait_until(flag.is_set, 10, "the checkpoint to start", 0.005, gevent.sleep)


def _assert_closed_soon(connection: sqlite3.Connection) -> None:
    def closed() -> bool:
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return True
        return False

    # A close that waits for the pool thread happens in the hub (gevent.sleep).
    wait_until(closed, 10, "the connection to be closed", 0.005, gevent.sleep)


def test_stopping_during_a_checkpoint_closes_the_connection_only_after_it(tmp_path):
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode=WAL"))
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    checkpointer = HeldCheckpointer(str(path))
    runner = gevent.spawn(checkpointer.run_forever, 0.001)
    try:
        _wait_for(checkpointer.started)
        runner.kill(block=True, timeout=5)  # stopped while the native thread is inside the checkpoint
        assert runner.dead
        checkpointer.release.set()
        wait_until(lambda: checkpointer.outcome is not None, 10, "the checkpoint's outcome", 0.005, gevent.sleep)
        assert isinstance(checkpointer.outcome, tuple), checkpointer.outcome  # ran on an open connection
        _assert_closed_soon(checkpointer.connection)  # once the checkpoint was over
    finally:
        checkpointer.release.set()
        engine.dispose()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_a_failing_checkpoint_is_logged_and_the_next_one_still_runs(tmp_path, monkeypatch):
    logger = logging.getLogger("app.ops.wal")  # other tests configure logging; listen on the logger itself
    monkeypatch.setattr(logger, "disabled", False)
    records = _Records()
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, records])  # the old list comes back after
    monkeypatch.setattr(logger, "level", logging.ERROR)
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is no SQLite file " * 200)
    checkpointer = WalCheckpointer(str(path))
    runner = gevent.spawn(checkpointer.run_forever, 0.001)
    try:

        def failures() -> list:
            found = [r for r in records.records if "checkpointing the SQLite write-ahead log failed" in r.message]
            return found if len(found) >= 2 else []  # the first failure did not end the loop

        failures = wait_until(failures, 10, "two logged failures", 0.005, gevent.sleep)
        assert failures[0].exc_info[0] is sqlite3.DatabaseError
        assert not runner.dead
    finally:
        runner.kill(block=True, timeout=5)
    _assert_closed_soon(checkpointer.connection)  # stopping closes it (after a checkpoint still running)


def test_other_databases_need_no_checkpoints(tmp_path):
    assert start_wal_checkpoints(create_engine("sqlite://")) is None  # in memory
    assert rawsql.sqlite_connections(create_engine("sqlite://")) is None
