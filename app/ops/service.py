"""Readiness of this process and who may read /readyz and /metrics."""
from __future__ import annotations

import hmac
import logging
from functools import lru_cache

from sqlalchemy import text

from app.client_ip import address_in_networks
from app.extensions import db
from app.paths import resource_dir

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _migration_revisions(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """(head revisions, every revision) of the migration scripts in directory."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(directory)
    return frozenset(scripts.get_heads()), frozenset(rev.revision for rev in scripts.walk_revisions())


def schema_state(current: set[str]) -> str:
    """current | pending (the database lacks migrations this code has) | newer (the database has
    migrations this code does not know: another host was upgraded first; migrations stay compatible
    with the previous release, so this process can still serve)."""
    heads, known = _migration_revisions(str(resource_dir("migrations")))
    if current == heads:
        return "current"
    if current and not current & known:
        return "newer"
    return "pending"


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, checks): the database answers and its schema is not behind the code's migrations."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:
                current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
            except Exception:  # no alembic_version table: never migrated
                conn.rollback()
                current = set()
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False, {"database": "unreachable"}
    state = schema_state(current)
    return state != "pending", {"database": "ok", "migrations": state}


def _address_in(address: str, spec: str) -> bool:
    try:
        return address_in_networks(address, spec)
    except ValueError:
        log.error("PFORTE_METRICS_ALLOW is not a list of addresses or networks: %r", spec)
        return False


def monitoring_allowed(client_ip: str, authorization: str | None, allow: str, token: str) -> bool:
    """True for a client inside PFORTE_METRICS_ALLOW or one that sends `Bearer PFORTE_METRICS_TOKEN`."""
    if token and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return True
    return bool(allow) and _address_in(client_ip, allow)
