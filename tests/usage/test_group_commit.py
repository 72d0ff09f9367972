"""Settlements that arrive together share one SQLite transaction; one bad row in a batch loses no other."""
from __future__ import annotations

import logging

import gevent
import gevent.event
import gevent.socket
import pytest
from sqlalchemy import text

from app.extensions import db
from app.rawsql import sqlite_connections, wait_until_idle
from app.usage.settle import RequestRecord, settle_request


def test_a_failing_settlement_in_a_batch_loses_none_of_the_others(app, make_key, caplog, monkeypatch):
    # Alembic's logging set-up in the app fixture disables existing loggers; the server's does not.
    monkeypatch.setattr(logging.getLogger("app.usage.settle"), "disabled", False)
    caplog.set_level(logging.ERROR, logger="app.usage.settle")
    key_id, _public_id = make_key("batch")
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("group commit applies to file-based SQLite only")
        assert sqlite_connections(db.engine) is not None
        records = [RequestRecord(request_id=f"batch-{n}", endpoint="chat", status=200, key_id=key_id, model="m",
                                 input_tokens=1, output_tokens=1, credits_micro=100 + n) for n in range(5)]
        records[2].request_id = None  # NOT NULL: this row cannot be written
        greenlets = [gevent.spawn(settle_request, db.engine, record) for record in records]
        gevent.joinall(greenlets, raise_error=True)
        with db.engine.connect() as conn:
            written = conn.execute(text("SELECT request_id FROM request_logs ORDER BY request_id")).scalars().all()
            used = conn.execute(text("SELECT used_micro FROM api_keys WHERE id = :id"), {"id": key_id}).scalar()
    assert written == ["batch-0", "batch-1", "batch-3", "batch-4"]
    assert used == 100 + 101 + 103 + 104  # the key's credits equal the sum of its rows
    assert "settling request None failed" in caplog.text


def test_the_batch_leader_lets_every_runnable_greenlet_go_first():
    steps: list[int] = []

    def busy():
        for step in range(50):
            steps.append(step)
            gevent.sleep(0)  # runnable again at once: the loop is not idle until this greenlet ends

    worker = gevent.spawn(busy)
    gevent.sleep(0)
    wait_until_idle(10.0)
    assert steps == list(range(50)) and worker.dead


def test_the_wait_for_an_idle_loop_is_bounded():
    left, right = gevent.socket.socketpair()
    stop = gevent.event.Event()
    exchanged = []

    def ping():
        while not stop.is_set():
            left.sendall(b"x")
            left.recv(1)

    def pong():
        while not stop.is_set():
            right.recv(1)
            right.sendall(b"y")
            exchanged.append(1)

    players = [gevent.spawn(ping), gevent.spawn(pong)]
    try:
        gevent.sleep(0)
        wait_until_idle(0.05)  # the two keep the loop busy for ever: the timer ends the wait
        assert exchanged and not any(player.dead for player in players)
    finally:
        stop.set()
        gevent.killall(players)
        left.close()
        right.close()
