"""Fresh databases for tests: a SQLite file per test, or a fresh PostgreSQL schema when configured;
and the local PostgreSQL and Redis servers for the tests that need them.

PFORTE_TEST_DATABASE_URL (e.g. postgresql+psycopg://root@127.0.0.1:5432/test) switches every test's
database to a schema of its own in that database. Schemas kept for live servers are dropped when the test
process ends.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import uuid
from pathlib import Path

import pytest

DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_kept_schemas: list[tuple[str, str]] = []


def _plain(url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_schema(base: str) -> tuple[str, str]:
    """A new empty schema in the PostgreSQL database `base`: (schema, URL that selects it)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_plain(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(_plain(base), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@atexit.register
def _drop_kept_schemas() -> None:
    for base, schema in _kept_schemas:
        with contextlib.suppress(Exception):
            drop_schema(base, schema)


@contextlib.contextmanager
def fresh_database_url(instance: Path, keep: bool = False, base: str | None = None):
    """Yield a URL of an empty database. keep=True leaves a PostgreSQL schema in place until the test
    process ends (for servers that outlive the block)."""
    base = base or os.environ.get("PFORTE_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{instance / 'pforte.db'}"
        return
    schema, url = create_schema(base)
    if keep:
        _kept_schemas.append((base, schema))
    try:
        yield url
    finally:
        if not keep:
            drop_schema(base, schema)


def _unavailable(what: str, flag: str, reason: str):
    if os.environ.get(flag) == "1":
        pytest.fail(f"{what} is needed but unreachable ({reason}) and {flag}=1")
    pytest.skip(f"{what} is unreachable: {reason}")


def postgres_url() -> str:
    """Base URL of the test PostgreSQL database; skips without one (fails with PFORTE_REQUIRE_POSTGRES=1)."""
    base = os.environ.get("PFORTE_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL
    if not base.startswith("postgresql"):
        base = DEFAULT_POSTGRES_URL
    try:
        import psycopg

        with psycopg.connect(_plain(base), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not there"
        _unavailable("PostgreSQL", "PFORTE_REQUIRE_POSTGRES", f"{type(exc).__name__}: {exc}")
    return base


def redis_url() -> str:
    """URL of the test Redis server; skips (or fails with PFORTE_REQUIRE_REDIS=1) without one."""
    url = os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI") or DEFAULT_REDIS_URL
    if not url.startswith("redis"):
        url = DEFAULT_REDIS_URL
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", "PFORTE_REQUIRE_REDIS", f"{type(exc).__name__}: {exc}")
    return url
