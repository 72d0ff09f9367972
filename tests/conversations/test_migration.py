"""Migration 0002 on a database with keys: the keys stay as they were, with the new fields empty."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from support.database import create_schema, drop_schema, postgres_url


def _upgrade_with_a_key(url: str, instance) -> tuple:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"INSTANCE_PATH": str(instance), "PFORTE_DATABASE_URL": url, "TESTING": True})
    with app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO api_keys (public_id, name, prefix, secret_hash, scope, status, created_at, "
                "quota_monthly, used_micro, reserved_micro) VALUES ('key_old', 'Old', 'sk-pf-Ab', 'h', 'full', "
                "'active', '2026-01-01 00:00:00', false, 5, 0)"))
        upgrade()
        with db.engine.connect() as conn:
            row = conn.execute(text("SELECT public_id, used_micro, keep_conversations, assistant_id "
                                    "FROM api_keys")).one()
        db.engine.dispose()
    return tuple(row)


def test_upgrade_keeps_keys_on_sqlite(tmp_path):
    assert _upgrade_with_a_key(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "inst") == ("key_old", 5, None, None)


@pytest.mark.postgres
def test_upgrade_keeps_keys_on_postgresql(tmp_path):
    base = postgres_url()
    schema, url = create_schema(base)
    try:
        assert _upgrade_with_a_key(url, tmp_path / "inst") == ("key_old", 5, None, None)
    finally:
        drop_schema(base, schema)
