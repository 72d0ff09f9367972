"""The in-process copy of the assistants that the gateway reads when a request names one.

All assistants are held as AssistantEntry snapshots, keyed on the catalog version: every change to an
assistant writes a new catalog version (service.py), which this process notices at once and other
processes within a second (see app/catalog/cache.py). So the hot path reads no assistant row.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.assistants.models import Assistant
from app.assistants.service import AssistantEntry, entry
from app.catalog import service as catalog
from app.extensions import db

log = logging.getLogger(__name__)

EXTENSION_KEY = "pforte_assistant_cache"


@dataclass(frozen=True)
class Snapshot:
    version: str | None
    by_id: MappingProxyType  # public id → AssistantEntry (enabled or not)
    ordered: tuple[AssistantEntry, ...]  # sorted by public id


class AssistantCache:
    """One per app; swapping `_snapshot` is atomic, so concurrent greenlets never see half of a reload."""

    def __init__(self):
        self._snapshot: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        version = catalog.catalog_version()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        try:
            with db.engine.connect() as conn:  # not the session: no transaction left open on the request
                table = Assistant.__table__
                rows = conn.execute(select(table).order_by(table.c.public_id)).all()
        except SQLAlchemyError:
            if snapshot is None:
                raise
            log.warning("reading the assistants failed; serving the cached ones", exc_info=True)
            return snapshot
        ordered = tuple(entry(row) for row in rows)
        snapshot = Snapshot(version, MappingProxyType({e.public_id: e for e in ordered}), ordered)
        self._snapshot = snapshot
        return snapshot


def _cache() -> AssistantCache:
    extensions = current_app.extensions
    cache = extensions.get(EXTENSION_KEY)
    if cache is None:
        cache = extensions.setdefault(EXTENSION_KEY, AssistantCache())
    return cache


def find(public_id: str) -> AssistantEntry | None:
    """The assistant with this public id, enabled or not, or None (from the cache)."""
    return _cache().snapshot().by_id.get(public_id)


def enabled_assistants() -> list[AssistantEntry]:
    """The enabled assistants, sorted by public id (from the cache)."""
    return [a for a in _cache().snapshot().ordered if a.enabled]
