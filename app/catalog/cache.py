"""The in-process copy of the catalog that the gateway reads on every request.

The whole catalog is held as immutable ModelEntry/UpstreamTarget objects with decrypted credentials.
A change in this process drops the copy at once; changes made by other processes (several
`pforte serve` sharing one database) are noticed through the `catalog_version` setting, which every
change rewrites and which is read at most once per CHECK_INTERVAL seconds.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC
from types import MappingProxyType

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.catalog.crypto import CredentialUnreadable, credential_for
from app.catalog.entries import ModelEntry
from app.catalog.models import Connection, Model
from app.extensions import db
from app.providers.base import UpstreamTarget
from app.settings.models import Setting

log = logging.getLogger(__name__)

VERSION_SETTING = "catalog_version"
CHECK_INTERVAL = 1.0  # seconds between version checks
EXTENSION_KEY = "pforte_catalog_cache"


@dataclass(frozen=True)
class Snapshot:
    version: str | None
    by_id: MappingProxyType  # public id → ModelEntry (all models, enabled or not)
    ordered: tuple[ModelEntry, ...]  # sorted by public id
    enabled_count: int


class CatalogCache:
    """One per app. Swapping `_snapshot` is atomic, so concurrent greenlets never see a half-built catalog."""

    def __init__(self, encryption_key: str, allow_link_local: bool = False):
        self._key = encryption_key
        self._allow_link_local = allow_link_local
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0

    def invalidate(self) -> None:
        self._snapshot = None

    def snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None and now - self._checked_at < CHECK_INTERVAL:
            return snapshot
        try:
            with db.engine.connect() as conn:
                version = read_version(conn)
                if snapshot is None or version != snapshot.version:
                    snapshot = self._load(conn, version)
        except SQLAlchemyError:
            if snapshot is None:
                raise
            # The database is unreachable: keep answering from the catalog we have, retry in a second.
            log.warning("catalog version check failed; serving the cached catalog", exc_info=True)
        self._snapshot = snapshot
        self._checked_at = now
        return snapshot

    def _load(self, conn, version: str | None) -> Snapshot:
        rows = conn.execute(select(Connection.__table__))
        targets = {row.id: upstream_target(row, self._key, self._allow_link_local) for row in rows}
        entries = []
        for row in conn.execute(select(Model.__table__).order_by(Model.__table__.c.public_id)):
            entries.append(ModelEntry(
                id=row.id, public_id=row.public_id, display_name=row.display_name,
                upstream_model=row.upstream_model, enabled=bool(row.enabled),
                input_price=float(row.input_price), output_price=float(row.output_price),
                capabilities=frozenset(filter(None, row.capabilities.split(","))),
                max_output_tokens=int(row.max_output_tokens),
                created=int(row.created_at.replace(tzinfo=UTC).timestamp()) if row.created_at else 0,
                target=targets.get(row.connection_id),
            ))
        ordered = tuple(entries)
        return Snapshot(version=version, by_id=MappingProxyType({e.public_id: e for e in ordered}),
                        ordered=ordered, enabled_count=sum(1 for e in ordered if e.enabled))


def upstream_target(row, encryption_key: str, allow_link_local: bool = False) -> UpstreamTarget:
    """The plain target for a connection row (table row or ORM object), credential decrypted; without the
    credential when it was entered for another base URL (see crypto.py)."""
    api_key = None
    base_url = row.base_url or ""
    if row.credential_encrypted:
        try:
            api_key = credential_for(row.credential_encrypted, encryption_key, base_url)
        except CredentialUnreadable:
            log.warning("credential of connection %r cannot be decrypted; was the instance key changed?",
                        row.name)
        else:
            if api_key is None:
                log.warning("credential of connection %r was entered for another base URL; it is not sent",
                            row.name)
    return UpstreamTarget(
        connection_id=row.id, name=row.name, kind=row.kind, base_url=row.base_url or "", api_key=api_key,
        api_version=row.api_version, connect_timeout=float(row.connect_timeout),
        read_timeout=float(row.read_timeout), total_timeout=float(row.total_timeout),
        responses_api=bool(row.responses_api),
        allow_link_local=allow_link_local,
        allow_passthrough=bool(row.allow_passthrough),
    )


def read_version(conn) -> str | None:
    table = Setting.__table__
    value = conn.execute(select(table.c.value).where(table.c.key == VERSION_SETTING)).scalar()
    return None if value is None else json.loads(value)


def catalog_cache() -> CatalogCache:
    """This app's cache (created on first use)."""
    extensions = current_app.extensions
    cache = extensions.get(EXTENSION_KEY)
    if cache is None:
        config = current_app.config
        cache = extensions.setdefault(EXTENSION_KEY, CatalogCache(
            config["PFORTE_ENCRYPTION_KEY"], bool(config.get("PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS"))))
    return cache
