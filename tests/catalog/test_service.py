"""Catalog service: validation, encryption at rest, delete rules, audit events and the hot-path cache."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import event
from support.waiting import wait_until

from app.catalog import service
from app.catalog.service import CatalogError

SECRET = "sk-upstream-Zq81vT0pXa55"
OPENAI = {"name": "openai", "kind": "openai", "base_url": "https://api.example.test/v1/"}


def _audit_rows():
    from app.audit.models import AuditEvent
    from app.extensions import db

    return db.session.query(AuditEvent).order_by(AuditEvent.id).all()


def _errors(call, *args, **kwargs) -> dict:
    with pytest.raises(CatalogError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_credential_is_encrypted_at_rest_and_decrypted_for_the_gateway(ctx, instance_path, database_url):
    from cryptography.fernet import Fernet

    from app.extensions import db

    connection = service.create_connection(OPENAI, credential=f"  {SECRET}\n")
    service.create_model({"public_id": "gpt-4o"}, "openai")

    stored = connection.credential_encrypted
    assert SECRET not in stored
    sealed = json.loads(Fernet(ctx.config["PFORTE_ENCRYPTION_KEY"].encode()).decrypt(stored.encode()))
    assert sealed["credential"] == SECRET and sealed["base_url"] == OPENAI["base_url"].rstrip("/")
    assert service.lookup_model("gpt-4o").target.api_key == SECRET
    # No row of any table holds the plaintext ...
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            assert SECRET not in repr(tuple(row)), table.name
    # ... and with SQLite, neither do the database files (main file and write-ahead log).
    if database_url.startswith("sqlite"):
        db.session.remove()
        db.engine.dispose()
        files = [p for p in Path(instance_path).glob("pforte.db*") if p.is_file()]
        assert files and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_base_url_rules(ctx):
    assert "base_url" in _errors(service.create_connection, {**OPENAI, "base_url": ""})
    assert "base_url" in _errors(service.create_connection, {**OPENAI, "base_url": "ftp://host/v1"})
    assert "base_url" in _errors(service.create_connection, {**OPENAI, "base_url": "https://u:p@host/v1"})
    assert "base_url" in _errors(service.create_connection, {**OPENAI, "base_url": "https://host/v1?x=1"})
    demo = service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
    assert demo.base_url == ""
    assert service.create_connection(OPENAI).base_url == "https://api.example.test/v1"


def test_kind_azure_version_and_timeouts_are_checked(ctx):
    errors = _errors(service.create_connection, {**OPENAI, "kind": "bedrock"})
    assert set(errors) == {"kind"}
    errors = _errors(service.create_connection, {**OPENAI, "kind": "azure", "api_version": "2024 10"})
    assert set(errors) == {"api_version"}
    azure = service.create_connection({**OPENAI, "kind": "azure", "api_version": "2025-01-01-preview"})
    assert azure.api_version == "2025-01-01-preview"
    # The API version belongs to Azure only.
    plain = service.create_connection({**OPENAI, "name": "o2", "api_version": "2024-10-21"})
    assert plain.api_version is None
    for bad in ("0", "-1", "abc", "nan", "100000"):
        errors = _errors(service.create_connection, {**OPENAI, "name": "x", "connect_timeout": bad})
        assert "connect_timeout" in errors
    errors = _errors(service.create_connection,
                     {**OPENAI, "name": "x", "connect_timeout": "30", "total_timeout": "10"})
    assert set(errors) == {"total_timeout"}
    ok = service.create_connection({**OPENAI, "name": "x", "connect_timeout": "2,5", "read_timeout": 30,
                                    "total_timeout": ""})
    assert (ok.connect_timeout, ok.read_timeout, ok.total_timeout) == (2.5, 30.0, 600.0)


def test_connection_names_and_model_ids_are_unique_ignoring_case(ctx):
    service.create_connection(OPENAI)
    assert set(_errors(service.create_connection, {**OPENAI, "name": "OpenAI"})) == {"name"}
    service.create_model({"public_id": "Llama/3:8b"}, "openai")
    assert set(_errors(service.create_model, {"public_id": "llama/3:8B"}, "openai")) == {"public_id"}


def test_model_defaults_and_rules(ctx):
    service.create_connection(OPENAI)
    model = service.create_model({"public_id": "meta-llama/Llama-3.1-8B:q4"}, "openai")
    assert model.display_name == model.upstream_model == "meta-llama/Llama-3.1-8B:q4"
    assert model.capabilities == "chat,embeddings,tools,vision"
    assert model.enabled and model.input_price == model.output_price == 0
    assert "public_id" in _errors(service.create_model, {"public_id": "has space"}, "openai")
    assert "public_id" in _errors(service.create_model, {"public_id": "trailing/"}, "openai")
    assert "public_id" in _errors(service.create_model, {"public_id": ""}, "openai")
    assert "input_price" in _errors(service.create_model, {"public_id": "m", "input_price": "-1"}, "openai")
    assert "capabilities" in _errors(service.create_model, {"public_id": "m"}, "openai", ["chat", "audio"])
    assert "capabilities" in _errors(service.create_model, {"public_id": "m"}, "openai", [])
    assert "connection" in _errors(service.create_model, {"public_id": "m"}, "no-such-connection")
    errors = _errors(service.create_model, {"public_id": "m", "max_output_tokens": "1.5"}, "openai")
    assert "max_output_tokens" in errors
    chosen = service.create_model({"public_id": "m", "input_price": "0.5", "output_price": 2},
                                  "openai", ["vision", "chat"])
    assert chosen.capabilities == "chat,vision"
    assert (chosen.input_price, chosen.output_price) == (0.5, 2.0)


def test_a_connection_with_models_cannot_be_deleted(ctx):
    connection = service.create_connection(OPENAI)
    model = service.create_model({"public_id": "m"}, "openai")
    assert "connection" in _errors(service.delete_connection, connection.id)
    service.delete_model(model.id)
    service.delete_connection(connection.id)
    assert service.overview() == ([], [])


def test_every_change_writes_an_audit_event_without_the_credential(ctx):
    connection = service.create_connection(OPENAI, credential=SECRET)
    service.update_connection(connection.id, {**OPENAI, "read_timeout": "60"}, credential="sk-new-key-123456")
    model = service.create_model({"public_id": "m"}, "openai")
    service.update_model(model.id, {"public_id": "m", "display_name": "Model M"}, connection.id)
    service.set_model_enabled(model.id, False)
    service.set_model_enabled(model.id, False)  # no change, no event
    service.set_model_enabled(model.id, True)
    service.delete_model(model.id)
    service.update_connection(connection.id, OPENAI, clear_credential=True)
    service.delete_connection(connection.id)

    rows = _audit_rows()
    assert [r.action for r in rows] == [
        "connection.create", "connection.update", "model.create", "model.update", "model.disable",
        "model.enable", "model.delete", "connection.update", "connection.delete"]
    assert json.loads(rows[1].before)["read_timeout"] == 120.0
    assert json.loads(rows[1].after)["read_timeout"] == 60.0
    assert json.loads(rows[3].after)["display_name"] == "Model M"
    assert json.loads(rows[7].before)["credential_set"] is True
    assert json.loads(rows[7].after)["credential_set"] is False
    for row in rows:
        assert SECRET not in (row.before or "") + (row.after or "")
        assert "sk-new-key" not in (row.before or "") + (row.after or "")
        assert row.actor_name == "cli"


def test_an_empty_credential_on_update_keeps_the_stored_one(ctx):
    connection = service.create_connection(OPENAI, credential=SECRET)
    service.create_model({"public_id": "m"}, "openai")
    service.update_connection(connection.id, {**OPENAI, "name": "renamed"}, credential="")
    entry = service.lookup_model("m")
    assert entry.target.api_key == SECRET and entry.target.name == "renamed"


def test_lookup_sees_changes_of_this_process_at_once(ctx):
    service.create_connection(OPENAI, credential=SECRET)
    model = service.create_model({"public_id": "m", "input_price": 1}, "openai")
    assert service.lookup_model("m").input_price == 1.0
    assert service.enabled_model_count() == 1

    service.set_model_enabled(model.id, False)
    assert service.lookup_model("m") is None
    assert service.lookup_model("m", enabled_only=False).enabled is False
    assert service.enabled_model_count() == 0
    assert service.list_models() == []
    assert [e.public_id for e in service.list_models(enabled_only=False)] == ["m"]

    service.update_model(model.id, {"public_id": "m2", "input_price": 3}, "openai")
    service.set_model_enabled(model.id, True)
    assert service.lookup_model("m") is None
    entry = service.lookup_model("m2")
    assert entry.input_price == 3.0
    assert entry.capabilities == frozenset({"chat", "embeddings", "tools", "vision"})
    with pytest.raises(AttributeError):
        entry.input_price = 0  # immutable snapshot


def test_lookups_do_not_query_the_database_between_version_checks(ctx):
    from app.extensions import db

    service.create_connection(OPENAI)
    service.create_model({"public_id": "m"}, "openai")
    service.lookup_model("m")  # loads the catalog
    statements = []

    def count(*_args, **_kwargs):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for _ in range(2000):
            assert service.lookup_model("m") is not None
        elapsed = time.monotonic() - started
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # At most one cheap version check per second may happen.
    assert len(statements) <= 1 + int(elapsed)


def test_another_process_sees_a_change_within_about_a_second(ctx, instance_path, database_url):
    from app import create_app
    from app.extensions import db

    other = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url,
                        "TESTING": True})
    service.create_connection(OPENAI)
    model = service.create_model({"public_id": "m"}, "openai")
    with other.app_context():
        assert service.lookup_model("m") is not None  # the other process caches the catalog
    service.set_model_enabled(model.id, False)  # changed here, in "this" process
    with other.app_context():
        wait_until(lambda: service.lookup_model("m") is None, 5, "the other process to notice the change")
        db.engine.dispose()


def test_a_credential_that_cannot_be_decrypted_leaves_the_key_empty(ctx, instance_path, database_url):
    from cryptography.fernet import Fernet

    from app import create_app

    service.create_connection(OPENAI, credential=SECRET)
    service.create_model({"public_id": "m"}, "openai")
    other = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url,
                        "PFORTE_ENCRYPTION_KEY": Fernet.generate_key().decode()})
    with other.app_context():
        assert service.lookup_model("m").target.api_key is None


def test_the_cached_catalog_keeps_serving_when_the_database_breaks(ctx, monkeypatch, instance_path,
                                                                   database_url):
    from app.catalog import cache
    from app.extensions import db

    if not database_url.startswith("sqlite"):
        pytest.skip("breaks the database by moving the SQLite file away")
    service.create_connection(OPENAI)
    service.create_model({"public_id": "m"}, "openai")
    assert service.lookup_model("m") is not None
    monkeypatch.setattr(cache, "CHECK_INTERVAL", 0.0)  # check the version on every lookup
    db.session.remove()
    db.engine.dispose()
    for path in Path(instance_path).glob("pforte.db*"):
        path.rename(path.with_name("moved-" + path.name))  # the next connection finds an empty database
    assert service.lookup_model("m") is not None
