"""The gateway's key check, on every API request: one indexed read, below SQLAlchemy's Connection layer
(app.rawsql), that gives a plain KeyContext or the reason for a refusal."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from sqlalchemy import bindparam, select

from app import rawsql
from app.database import utcnow
from app.extensions import db
from app.keys import conversation_fields, secrets
from app.keys.context import KeyContext, KeyRejection
from app.keys.models import ApiKey, split_list

_api_keys = ApiKey.__table__
LOOKUP = select(*(_api_keys.c[name] for name in (
    "id", "public_id", "name", "prefix", "scope", "status", "expires_at", "allowed_models", "allowed_cidrs",
    "quota_micro", "quota_monthly", "quota_period", "used_micro", "reserved_micro",
    "rpm", "rph", "monthly_requests", "max_concurrent", *conversation_fields.FIELDS))
                ).where(_api_keys.c.secret_hash == bindparam("digest"))
ENDED = select(_api_keys.c.id, _api_keys.c.status).where(
    _api_keys.c.id.in_(bindparam("ids", expanding=True)), _api_keys.c.status != "active")


def verify_key(raw: str | None, now: datetime | None = None) -> KeyContext | KeyRejection:
    """The checksum first (a malformed key never reaches the database), then one indexed lookup by HMAC.
    Nothing is cached, so a revocation made by any process applies to the very next request."""
    if not raw or not secrets.is_well_formed(raw):
        return KeyRejection("malformed")
    digest = secrets.hash_key(current_app.config["PFORTE_KEY_PEPPER"], raw)
    row = rawsql.fetch_one(db.engine, LOOKUP, {"digest": digest})
    if row is None:
        return KeyRejection("unknown")
    (key_id, public_id, name, prefix, scope, status, expires_at, allowed_models, allowed_cidrs,
     quota_micro, quota_monthly, quota_period, used_micro, reserved_micro,
     rpm, rph, monthly_requests, max_concurrent, keep_conversations, assistant_id) = row
    if status != "active":
        return KeyRejection("revoked" if status == "revoked" else "disabled")
    if expires_at is not None and expires_at <= (now or utcnow()):
        return KeyRejection("expired")
    return KeyContext(
        id=key_id, public_id=public_id, name=name, prefix=prefix, scope=scope, expires_at=expires_at,
        allowed_models=frozenset(split_list(allowed_models)), allowed_cidrs=tuple(split_list(allowed_cidrs)),
        quota_micro=quota_micro, quota_monthly=bool(quota_monthly), quota_period=quota_period,
        used_micro=used_micro or 0, reserved_micro=reserved_micro or 0,
        rpm=rpm, rph=rph, monthly_requests=monthly_requests, max_concurrent=max_concurrent,
        keep_conversations=conversation_fields.resolve_keep(keep_conversations), assistant_id=assistant_id,
    )


def ended_keys(key_ids: Iterable[int]) -> dict[int, str]:
    """Of these keys, the ones no longer active: id → status ("revoked" or "disabled"). One indexed read
    for all of them, so that the gateway can end the streams of a key revoked by any process."""
    ids = list(key_ids)
    if not ids:
        return {}
    with db.engine.connect() as conn:
        rows = conn.execute(ENDED, {"ids": ids})
        return {key_id: status for key_id, status in rows}
