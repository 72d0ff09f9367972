"""scripts/backup and scripts/restore on PostgreSQL (pg_dump / pg_restore), on a database of its own."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from support.database import postgres_url
from support.opskit import auth
from support.processes import PFORTE, LiveServer, free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture
def own_database():
    base = postgres_url()
    name = f"pforte_bk_{uuid.uuid4().hex[:10]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def script(name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env, "PFORTE_BIN": PFORTE}
    return subprocess.run([str(ROOT / "scripts" / name), *args], env=full_env, capture_output=True, text=True,
                          timeout=300)


def test_pg_dump_backup_and_restore_round_trip(own_database, tmp_path):
    instance = tmp_path / "inst"
    env = {"PFORTE_DATABASE_URL": own_database, "PFORTE_INSTANCE_PATH": str(instance)}
    run_cli(instance, "init", env=env)
    kept = json.loads(run_cli(instance, "keys", "create", "--name", "kept", "--json", env=env).stdout)

    dump = tmp_path / "pforte.dump"
    made = script("backup", str(dump), env=env)
    assert made.returncode == 0, made.stderr
    assert dump.stat().st_size > 0 and dump.stat().st_mode & 0o077 == 0

    later = json.loads(run_cli(instance, "keys", "create", "--name", "later", "--json", env=env).stdout)
    run_cli(instance, "keys", "revoke", kept["id"], env=env)

    unconfirmed = script("restore", str(dump), env=env)
    assert unconfirmed.returncode != 0 and "--yes" in unconfirmed.stderr
    restored = script("restore", "--yes", str(dump), env=env)
    assert restored.returncode == 0, restored.stderr

    server = LiveServer(instance, free_port(), {"PFORTE_DATABASE_URL": own_database})
    try:
        server.start()
        def status(key: dict) -> int:
            return requests.get(f"{server.url}/v1/models", headers=auth(key["key"]), timeout=10).status_code

        assert status(kept) == 200, "the key active at backup time is active again"
        assert status(later) == 401, "a key made after the backup is gone"
    finally:
        server.stop()
