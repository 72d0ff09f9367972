"""Readiness of this process and who may read /readyz and /metrics."""
from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import lru_cache

from sqlalchemy import text

from app.client_ip import parse_networks
from app.extensions import db
from app.paths import resource_dir

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _migration_heads(directory: str) -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(directory).get_heads())


def expected_schema_revisions() -> frozenset[str]:
    """The head revision(s) of the migrations this code ships with."""
    return _migration_heads(str(resource_dir("migrations")))


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, checks): the database answers and its schema is at the migrations' head."""
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
    if current != expected_schema_revisions():
        return False, {"database": "ok", "migrations": "pending"}
    return True, {"database": "ok", "migrations": "current"}


def _address_in(address: str, spec: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    try:
        networks = parse_networks(spec)
    except ValueError:
        log.error("PFORTE_METRICS_ALLOW is not a list of addresses or networks: %r", spec)
        return False
    return any(ip.version == net.version and ip in net for net in networks)


def monitoring_allowed(client_ip: str, authorization: str | None, allow: str, token: str) -> bool:
    """True for a client inside PFORTE_METRICS_ALLOW or one that sends `Bearer PFORTE_METRICS_TOKEN`."""
    if token and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return True
    return bool(allow) and _address_in(client_ip, allow)
