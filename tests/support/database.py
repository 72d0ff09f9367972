"""Fresh databases for tests: a SQLite file per test, or a fresh PostgreSQL schema when configured."""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


@contextlib.contextmanager
def fresh_database_url(instance: Path, keep: bool = False):
    base = os.environ.get("PFORTE_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{instance / 'pforte.db'}"
        return
    # PostgreSQL: one schema per test, selected through the connection's search_path.
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        if not keep:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
