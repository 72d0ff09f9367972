"""app.rawsql.GroupWriter: greenlets writing at the same moment share one SQLite transaction; a work
that fails is rolled back alone and only its caller sees the exception."""
from __future__ import annotations

import sqlite3

import gevent
import pytest
from sqlalchemy import create_engine

from app.rawsql import GroupWriter, next_turn


def counter_database(path):
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        setup.execute("INSERT INTO counter VALUES (1, 0)")
    return create_engine(f"sqlite:///{path}")


@pytest.fixture
def engine(tmp_path):
    engine = counter_database(tmp_path / "group.db")
    yield engine
    engine.dispose()


def changes(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM counter WHERE id = 1").fetchone()[0]


def add(amount: int):
    def work(transaction):
        cursor = transaction.execute_sql("UPDATE counter SET value = value + ? WHERE id = 1", (amount,))
        if amount < 0:
            raise ValueError(f"refused {amount}")
        return cursor.rowcount * amount
    return work


def test_works_of_one_turn_share_a_commit_and_a_failure_stays_alone(engine):
    writer = GroupWriter.for_engine(engine, "test", next_turn)
    commits = []
    original = writer._commit
    writer._commit = lambda batch: (commits.append(len(batch)), original(batch))

    def call(amount):
        try:
            return writer.run(add(amount))
        except ValueError as exc:
            return str(exc)

    greenlets = [gevent.spawn(call, amount) for amount in (1, 2, -100, 4, 8)]
    gevent.joinall(greenlets, raise_error=True)
    assert [g.value for g in greenlets] == [1, 2, "refused -100", 4, 8]
    assert commits == [5]  # one transaction for all five
    assert changes(engine.url.database) == 15  # the failed work's update was rolled back, the others kept


def test_a_lone_work_is_written_at_once(engine):
    writer = GroupWriter.for_engine(engine, "test", next_turn)
    assert writer.run(add(3)) == 3
    assert changes(engine.url.database) == 3


def test_other_databases_get_no_group_writer():
    assert GroupWriter.for_engine(create_engine("sqlite://"), "test", next_turn) is None


def test_a_lone_failing_work_is_rolled_back(engine):
    writer = GroupWriter.for_engine(engine, "test", next_turn)
    with pytest.raises(ValueError):
        writer.run(add(-5))
    assert changes(engine.url.database) == 0
    assert writer.run(add(2)) == 2  # the writer is usable afterwards


def test_a_transaction_that_cannot_start_fails_every_caller_and_writes_nothing(tmp_path, monkeypatch):
    import app.rawsql as rawsql

    monkeypatch.setattr(rawsql, "BUSY_TIMEOUT_SECONDS", 0.05)  # read when the thread's connection opens
    path = tmp_path / "locked.db"
    engine = counter_database(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        writer = GroupWriter.for_engine(engine, "test", next_turn)

        def call(amount):
            try:
                return writer.run(add(amount))
            except sqlite3.OperationalError as exc:
                return str(exc)

        greenlets = [gevent.spawn(call, amount) for amount in (1, 2)]
        gevent.joinall(greenlets, raise_error=True)
        assert [g.value for g in greenlets] == ["database is locked"] * 2
        assert not writer.leading and not writer.pending
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert changes(path) == 0
    assert writer.run(add(5)) == 5  # and the writer works again once the lock is gone
    engine.dispose()
