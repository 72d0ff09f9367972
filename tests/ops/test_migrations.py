"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""
from __future__ import annotations

import pytest
from support.database import create_schema, drop_schema, postgres_url


def _schema_differences(url: str, instance) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from app.extensions import db

    app = create_app({"INSTANCE_PATH": str(instance), "PFORTE_DATABASE_URL": url, "TESTING": True})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        downgrade(revision="base")
        with db.engine.connect() as conn:
            left = set(db.inspect(conn).get_table_names()) - {"alembic_version"}
        upgrade()  # and up again, as an upgrade after a rollback would
        db.engine.dispose()
    assert left == set(), f"downgrade left tables behind: {left}"
    return diff


def test_migrations_match_the_models_on_sqlite(tmp_path):
    assert _schema_differences(f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "inst") == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(tmp_path):
    base = postgres_url()
    schema, url = create_schema(base)
    try:
        assert _schema_differences(url, tmp_path / "inst") == []
    finally:
        drop_schema(base, schema)
