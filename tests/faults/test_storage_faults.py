"""Fault injection, the storage: the SQLite database locked by another writer, PostgreSQL stopped in the
middle of a run, Redis gone. Each gets its documented answer, the process keeps serving, nothing already
settled is lost, and it recovers when the part comes back. PostgreSQL and Redis are private ones on free
ports (tests/support/private_services.py); the machine's shared servers are never stopped."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests
from support.private_services import PrivatePostgres, PrivateRedis
from support.proof import proof_gateway
from support.waiting import wait_until

BUSY_TIMEOUT_SECONDS = 15  # app/rawsql.py and app/database.py: how long a write waits for a lock


def _ok(gateway, ids: list[str], **kwargs) -> None:
    answer = gateway.chat(**kwargs)
    assert answer.status_code == 200, answer.text
    ids.append(answer.headers["x-request-id"])


def _in_thread(gateway, results: list, **kwargs) -> threading.Thread:
    def run():
        started = time.monotonic()
        answer = gateway.chat(**kwargs)
        results.append((answer, time.monotonic() - started))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _assert_settled(gateway, ids: list[str]) -> None:
    wait_until(lambda: gateway.log_rows(ids) == set(ids), 15, "every request to have its request-log row")
    assert gateway.invariants() == []


@pytest.fixture
def sqlite_gateway(tmp_path):
    with proof_gateway(tmp_path / "instance", key_options=("--quota", "50"),
                       database_url=f"sqlite:///{tmp_path / 'instance' / 'pforte.db'}") as gateway:
        yield gateway


def _lock(gateway) -> sqlite3.Connection:
    """Another writer holds the SQLite database's write lock until the connection is rolled back."""
    conn = sqlite3.connect(gateway.database_url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_sqlite_locked_briefly_delays_requests_and_loses_nothing(sqlite_gateway):
    gateway, ids, results = sqlite_gateway, [], []
    _ok(gateway, ids)
    lock = _lock(gateway)
    threads = [_in_thread(gateway, results) for _ in range(4)]
    stream = _in_thread(gateway, results, stream=True)
    time.sleep(2)  # the fault's duration: the lock is held this long, whatever the requests do
    lock.rollback()
    lock.close()
    for thread in [*threads, stream]:
        thread.join(30)
    assert [answer.status_code for answer, _ in results] == [200] * 5, [a.text for a, _ in results]
    ids += [answer.headers["x-request-id"] for answer, _ in results]
    _ok(gateway, ids)
    _assert_settled(gateway, ids)


@pytest.mark.timeout(120)
def test_sqlite_locked_past_the_busy_timeout_is_a_500_and_the_row_is_still_written(sqlite_gateway):
    gateway, ids, results = sqlite_gateway, [], []
    _ok(gateway, ids)
    lock = _lock(gateway)
    thread = _in_thread(gateway, results)  # reserving credits has to write: waits for the lock, gives up
    time.sleep(BUSY_TIMEOUT_SECONDS + 2)
    lock.rollback()
    lock.close()
    thread.join(30)
    (answer, seconds), = results
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error", answer.text
    assert seconds >= BUSY_TIMEOUT_SECONDS
    assert "Traceback" not in answer.text
    ids.append(answer.headers["x-request-id"])
    _ok(gateway, ids)
    _assert_settled(gateway, ids)


@pytest.fixture
def private_postgres():
    postgres = PrivatePostgres()
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.close()


@pytest.mark.timeout(180)
def test_postgres_stopped_mid_run_is_a_500_and_recovers_when_it_is_back(tmp_path, private_postgres):
    with proof_gateway(tmp_path / "instance", key_options=("--quota", "50"),
                       database_url=private_postgres.url) as gateway:
        ids: list[str] = []
        for _ in range(3):
            _ok(gateway, ids)
        _ok(gateway, ids, stream=True)
        settled = list(ids)
        private_postgres.stop()
        for _ in range(3):
            answer = gateway.chat()
            assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error", answer.text
        ready = requests.get(f"{gateway.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
        assert requests.get(f"{gateway.url}/healthz", timeout=10).status_code == 200  # the process lives
        private_postgres.start()
        wait_until(lambda: gateway.chat().status_code == 200, 30, "the gateway to serve again")
        _ok(gateway, ids)
        _ok(gateway, ids, stream=True)
        assert gateway.log_rows(settled) == set(settled)  # what was settled before the outage is all there
        _assert_settled(gateway, ids)


@pytest.mark.timeout(120)
def test_redis_gone_serves_without_rate_limits_and_limits_again_when_it_is_back(tmp_path):
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    try:
        with proof_gateway(tmp_path / "instance", key_options=("--quota", "50", "--rpm", "3"),
                           env={"PFORTE_RATELIMIT_STORAGE_URI": redis_server.url}) as gateway:
            ids: list[str] = []
            for _ in range(3):
                _ok(gateway, ids)
            limited = gateway.chat()
            assert limited.status_code == 429, limited.text
            redis_server.stop()
            for _ in range(3):  # docs/operations.md: served without rate limits, and logged; quotas hold
                _ok(gateway, ids)
            assert "rate-limit storage failed" in gateway.server.log_text()
            redis_server.start()  # empty: the counters start again
            wait_until(lambda: gateway.chat().status_code == 429, 30, "the rate limit to count again")
            _assert_settled(gateway, ids)
    finally:
        redis_server.stop()
