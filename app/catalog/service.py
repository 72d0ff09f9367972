"""Connections and models: the only place in the catalog domain that commits.

Every change writes an audit event and a new catalog version in the same transaction, then drops this
process's cached catalog (other processes notice the new version within a second, see cache.py).
The gateway reads through lookup_model / list_models / enabled_model_count, which never touch the
database in the common case.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit import service as audit
from app.catalog.cache import VERSION_SETTING, catalog_cache, upstream_target
from app.catalog.crypto import CredentialUnreadable, credential_for, encrypt_credential
from app.catalog.entries import ModelEntry
from app.catalog.models import CAPABILITIES, CONNECTION_KINDS, Connection, Model
from app.catalog.validation import CatalogError, clean_connection, clean_model, parse_capabilities
from app.extensions import db
from app.providers.probe import ProbeResult, probe_connection
from app.settings import service as settings

__all__ = [
    "CAPABILITIES", "CONNECTION_KINDS", "CatalogError", "CatalogNotFound", "parse_capabilities",
    "overview", "list_connections", "get_connection", "get_model", "find_model",
    "create_connection", "update_connection", "delete_connection", "test_connection",
    "create_model", "update_model", "set_model_enabled", "delete_model",
    "lookup_model", "list_models", "enabled_model_count", "catalog_version", "note_related_change",
    "drop_cached",
]

MAX_CREDENTIAL_CHARS = 8192
NAME_TAKEN = _l("A connection with this name exists already.")
ID_TAKEN = _l("A model with this id exists already.")


class CatalogNotFound(LookupError):
    """No connection or model with this id."""


# --- reading (admin pages and CLI) ---------------------------------------------------------------

def overview() -> tuple[list[tuple[Connection, int]], list[Model]]:
    """All connections with their model counts, and all models (by public id)."""
    per_connection = select(Model.connection_id, func.count()).group_by(Model.connection_id)
    counts = dict(db.session.execute(per_connection).all())
    models = db.session.scalars(select(Model).order_by(Model.public_id)).all()
    return [(c, counts.get(c.id, 0)) for c in list_connections()], list(models)


def list_connections() -> list[Connection]:
    return list(db.session.scalars(select(Connection).order_by(func.lower(Connection.name))))


def get_connection(connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise CatalogNotFound(connection_id)
    return connection


def get_model(model_id: int) -> Model:
    model = db.session.get(Model, model_id)
    if model is None:
        raise CatalogNotFound(model_id)
    return model


def find_model(public_id: str) -> Model:
    """A model by the public id clients send (exact match)."""
    model = db.session.scalar(select(Model).where(Model.public_id == public_id))
    if model is None:
        raise CatalogNotFound(public_id)
    return model


# --- connections ---------------------------------------------------------------------------------

CONNECTION_FIELDS = ("name", "kind", "base_url", "api_version", "connect_timeout", "read_timeout",
                     "total_timeout", "responses_api", "allow_passthrough")  # what update_connection takes

def create_connection(values: Mapping, credential: str | None = None) -> Connection:
    """A new upstream connection; `credential` (API key) is stored encrypted, bound to the base URL."""
    clean = clean_connection(values, allow_link_local=_allow_link_local())
    _require_unique(Connection.name, clean["name"], None, "name", NAME_TAKEN)
    connection = Connection(**clean, credential_encrypted=_encrypted(credential, clean["base_url"]))
    db.session.add(connection)
    db.session.flush()
    audit.record("connection.create", target_type="connection", target_id=connection.id,
                 target_name=connection.name, after=_connection_snapshot(connection))
    _commit_change()
    return connection


def update_connection(connection_id: int, values: Mapping, credential: str | None = None,
                      clear_credential: bool = False, owner: bool = False) -> Connection:
    """Change a connection. An empty credential keeps the stored one; clear_credential removes it.
    A new base URL needs the credential again unless an `owner` (or the CLI) moves the stored one along:
    otherwise an admin could point the organisation's key at an address of their choosing."""
    connection = get_connection(connection_id)
    clean = clean_connection(values, allow_link_local=_allow_link_local())
    _require_unique(Connection.name, clean["name"], connection.id, "name", NAME_TAKEN)
    before = _connection_snapshot(connection)
    new_credential = bool(credential and credential.strip()) and not clear_credential
    kept = None if clear_credential or new_credential else _stored_credential(connection)
    moved = kept is not None and clean["base_url"] != connection.base_url
    if moved and not owner:
        raise CatalogError({"credential": _l(
            "The base URL changed: enter the API key again (or ask an owner to make the change), so that the "
            "stored key is never sent to an address it was not entered for.")})
    for name, value in clean.items():
        setattr(connection, name, value)
    if clear_credential:
        connection.credential_encrypted = None
    elif new_credential:
        connection.credential_encrypted = _encrypted(credential, clean["base_url"])
    elif kept is not None:  # bound (again) to the base URL as saved now
        connection.credential_encrypted = _encrypted(kept, clean["base_url"])
    after = _connection_snapshot(connection)
    if new_credential:
        after["credential_changed"] = True
    if moved:
        after["credential_moved_to_new_base_url"] = True
    audit.record("connection.update", target_type="connection", target_id=connection.id,
                 target_name=connection.name, before=before, after=after)
    _commit_change()
    return connection


def delete_connection(connection_id: int) -> None:
    """Delete a connection that no model uses any more."""
    connection = get_connection(connection_id)
    in_use = db.session.scalar(select(func.count()).where(Model.connection_id == connection.id))
    if in_use:
        raise CatalogError({"connection": _l(
            "This connection is used by %(count)d model(s). Delete or move them first.", count=in_use)})
    audit.record("connection.delete", target_type="connection", target_id=connection.id,
                 target_name=connection.name, before=_connection_snapshot(connection))
    db.session.delete(connection)
    _commit_change()


def test_connection(connection_id: int) -> ProbeResult:
    """Ask the upstream for its model list with the stored credential (no transaction is held meanwhile);
    the test and its outcome are recorded in the audit trail."""
    connection = get_connection(connection_id)
    name = connection.name
    target = upstream_target(connection, current_app.config["PFORTE_ENCRYPTION_KEY"],
                             _allow_link_local())
    db.session.rollback()  # end the read transaction before going out on the network
    result = probe_connection(target)
    audit.record_now("connection.test", target_type="connection", target_id=connection_id, target_name=name,
                     after={"ok": result.ok, "url": result.url, "status": result.status,
                            "error_kind": result.error_kind})
    return result


# --- models --------------------------------------------------------------------------------------

def create_model(values: Mapping, connection: int | str, capabilities: Iterable[str] | None = None,
                 enabled: bool = True) -> Model:
    """A new model on `connection` (its id, or its name as a string). No capabilities given = all."""
    clean = clean_model(values, capabilities)
    target = _resolve_connection(connection)
    _require_unique(Model.public_id, clean["public_id"], None, "public_id", ID_TAKEN)
    model = Model(**clean, connection_id=target.id, enabled=bool(enabled))
    db.session.add(model)
    db.session.flush()
    audit.record("model.create", target_type="model", target_id=model.id, target_name=model.public_id,
                 after=_model_snapshot(model, target))
    _commit_change()
    return model


def update_model(model_id: int, values: Mapping, connection: int | str,
                 capabilities: Iterable[str] | None = None) -> Model:
    """Change a model's fields (not its enabled flag; see set_model_enabled)."""
    model = get_model(model_id)
    clean = clean_model(values, capabilities)
    target = _resolve_connection(connection)
    _require_unique(Model.public_id, clean["public_id"], model.id, "public_id", ID_TAKEN)
    before = _model_snapshot(model, model.connection)
    for name, value in clean.items():
        setattr(model, name, value)
    model.connection_id = target.id
    model.connection = target
    audit.record("model.update", target_type="model", target_id=model.id, target_name=model.public_id,
                 before=before, after=_model_snapshot(model, target))
    _commit_change()
    return model


def set_model_enabled(model_id: int, enabled: bool) -> Model:
    """Offer a model to clients, or stop offering it (takes effect on the next request)."""
    model = get_model(model_id)
    if model.enabled != bool(enabled):
        model.enabled = bool(enabled)
        audit.record("model.enable" if enabled else "model.disable", target_type="model",
                     target_id=model.id, target_name=model.public_id,
                     before={"enabled": not model.enabled}, after={"enabled": model.enabled})
        _commit_change()
    return model


def delete_model(model_id: int) -> None:
    model = get_model(model_id)
    audit.record("model.delete", target_type="model", target_id=model.id, target_name=model.public_id,
                 before=_model_snapshot(model, model.connection))
    db.session.delete(model)
    _commit_change()


# --- hot path (gateway) --------------------------------------------------------------------------

def lookup_model(public_id: str, enabled_only: bool = True) -> ModelEntry | None:
    """The catalog entry clients address as `public_id`; None when unknown (or disabled, by default)."""
    entry = catalog_cache().snapshot().by_id.get(public_id)
    if entry is None or (enabled_only and not entry.enabled):
        return None
    return entry


def list_models(enabled_only: bool = True) -> list[ModelEntry]:
    """Catalog entries sorted by public id."""
    entries = catalog_cache().snapshot().ordered
    return [e for e in entries if e.enabled] if enabled_only else list(entries)


def enabled_model_count() -> int:
    return catalog_cache().snapshot().enabled_count


def catalog_version() -> str | None:
    """The version of the cached catalog (checked at most once a second): it changes with every change to
    the catalog or to what is cached with it."""
    return catalog_cache().snapshot().version


# --- helpers -------------------------------------------------------------------------------------

def _allow_link_local() -> bool:
    return bool(current_app.config.get("PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS"))


def _stored_credential(connection: Connection) -> str | None:
    """The stored credential if it may still be sent to the connection's current base URL, else None."""
    try:
        return credential_for(connection.credential_encrypted, current_app.config["PFORTE_ENCRYPTION_KEY"],
                              connection.base_url)
    except CredentialUnreadable:
        return None


def _encrypted(credential: str | None, base_url: str) -> str | None:
    credential = (credential or "").strip()
    if not credential:
        return None
    if len(credential) > MAX_CREDENTIAL_CHARS or any(ch in credential for ch in "\r\n"):
        raise CatalogError({"credential": _l("The API key must be one line of at most %(max)d characters.",
                                             max=MAX_CREDENTIAL_CHARS)})
    return encrypt_credential(credential, current_app.config["PFORTE_ENCRYPTION_KEY"], base_url)


def _resolve_connection(reference: int | str | None) -> Connection:
    if isinstance(reference, int):
        connection = db.session.get(Connection, reference)
    elif reference:
        by_name = select(Connection).where(func.lower(Connection.name) == reference.lower())
        connection = db.session.scalar(by_name)
    else:
        connection = None
    if connection is None:
        raise CatalogError({"connection": _l("Choose an existing connection.")})
    return connection


def _require_unique(column, value: str, own_id: int | None, field: str, message) -> None:
    """CatalogError when another row holds `value` in `column` (ignoring case)."""
    query = select(column).where(func.lower(column) == value.lower())
    if own_id is not None:
        query = query.where(column.class_.id != own_id)
    if db.session.scalar(query) is not None:
        raise CatalogError({field: message})


def _connection_snapshot(connection: Connection) -> dict:
    """What the audit trail keeps of a connection: everything but the credential itself."""
    return {
        "name": connection.name, "kind": connection.kind, "base_url": connection.base_url,
        "api_version": connection.api_version, "credential_set": bool(connection.credential_encrypted),
        "connect_timeout": connection.connect_timeout, "read_timeout": connection.read_timeout,
        "total_timeout": connection.total_timeout, "responses_api": bool(connection.responses_api),
        "allow_passthrough": bool(connection.allow_passthrough),
    }


def _model_snapshot(model: Model, connection: Connection | None) -> dict:
    return {
        "public_id": model.public_id, "display_name": model.display_name,
        "connection": connection.name if connection else None, "upstream_model": model.upstream_model,
        "enabled": bool(model.enabled), "input_price": model.input_price, "output_price": model.output_price,
        "capabilities": model.capabilities, "max_output_tokens": model.max_output_tokens,
    }


def _bump_catalog_version() -> None:
    """Write a fresh catalog version: a random token, so that concurrent writers never store the same one."""
    settings.set_setting(VERSION_SETTING, uuid.uuid4().hex)


def note_related_change() -> None:
    """For a change outside the catalog that the gateway caches with it (assistants): a fresh catalog
    version in the caller's transaction, so that every process reloads within a second. The caller commits,
    then calls drop_cached()."""
    _bump_catalog_version()


def drop_cached() -> None:
    """Drop this process's cached catalog (it reloads on the next request)."""
    catalog_cache().invalidate()


def _commit_change() -> None:
    _bump_catalog_version()
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        message = _l("Someone else changed the catalog at the same time; please try again.")
        raise CatalogError({"form": message}) from exc
    finally:
        catalog_cache().invalidate()
