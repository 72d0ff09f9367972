"""API keys for admins: create, edit, disable, enable, revoke, list and read. The only place in this
domain that commits; every change records an audit event. The gateway's check is app.keys.verify."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from app.audit import service as audit
from app.database import utcnow
from app.extensions import db
from app.keys import conversation_fields, secrets
from app.keys.models import ApiKey, split_list
from app.keys.validation import EDITABLE, NAME_MAX, KeyInputError, clean_values

LIST_FILTERS = ("all", "active", "disabled", "revoked", "expired")
PAGE_SIZE = 25


class KeyNotFound(LookupError):
    """No key has this public id."""


# ------------------------------------------------------------------------------------------- lifecycle


def create_key(name: str, expires_at: datetime | None = None, *, actor: str | None = None,
               created_by_id: int | None = None, **policy) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which exists only in this return value."""
    values = clean_values({"name": name, "expires_at": expires_at, **policy}, creating=True)
    plaintext = secrets.generate_key(current_app.config["PFORTE_KEY_PREFIX"])
    key = ApiKey(public_id=secrets.new_public_id(), prefix=secrets.display_prefix(plaintext),
                 secret_hash=secrets.hash_key(current_app.config["PFORTE_KEY_PEPPER"], plaintext),
                 status="active", created_by_id=created_by_id, used_micro=0, reserved_micro=0,
                 quota_monthly=False, scope="full")
    for field, value in values.items():
        setattr(key, field, value)
    if key.quota_monthly:
        key.quota_period = this_month()
    db.session.add(key)
    db.session.flush()
    _record("key.create", key, None, snapshot(key), actor)
    db.session.commit()
    return key, plaintext


def update_key(public_id: str, changes: Mapping[str, object], *, actor: str | None = None) -> ApiKey:
    """Apply admin edits (any of EDITABLE). A change of the name alone is recorded as key.rename."""
    key = get_key(public_id)
    if key.status == "revoked":
        raise KeyInputError({"status": _l("This key has been revoked and can no longer be changed.")})
    values = clean_values(changes, creating=False, current=key)
    before = snapshot(key)
    changed = {field: value for field, value in values.items()
               if before[field] != _snapshot_value(field, value)}
    if not changed:
        return key
    for field, value in changed.items():
        setattr(key, field, value)
    if "quota_monthly" in changed and key.quota_monthly and not key.quota_period:
        key.quota_period = this_month()
    after = snapshot(key)
    action = conversation_fields.update_action(changed)
    _record(action, key, _only(before, changed), _only(after, changed), actor)
    db.session.commit()
    return key


def rename_key(public_id: str, name: str, *, actor: str | None = None) -> ApiKey:
    return update_key(public_id, {"name": name}, actor=actor)


def disable_key(public_id: str, *, actor: str | None = None) -> ApiKey:
    """Temporarily refuse the key (enable_key undoes it). A revoked key stays revoked."""
    return _set_status(public_id, "disabled", "key.disable", actor)


def enable_key(public_id: str, *, actor: str | None = None) -> ApiKey:
    return _set_status(public_id, "active", "key.enable", actor)


def revoke_key(public_id: str, *, actor: str | None = None) -> ApiKey:
    """Refuse the key for good; it stays listed for the record."""
    return _set_status(public_id, "revoked", "key.revoke", actor)


def _set_status(public_id: str, status: str, action: str, actor: str | None) -> ApiKey:
    key = get_key(public_id)
    if key.status == status:
        return key
    if key.status == "revoked":
        raise KeyInputError({"status": _l("This key has been revoked; revoking cannot be undone.")})
    before = {"status": key.status}
    key.status = status
    if status == "revoked":
        key.revoked_at = utcnow()
        conversation_fields.forget(key.id)
    after = {"status": status, **({"revoked_at": key.revoked_at} if status == "revoked" else {})}
    _record(action, key, before, after, actor)
    db.session.commit()
    return key


def _record(action: str, key: ApiKey, before: dict | None, after: dict | None, actor: str | None) -> None:
    audit.record(action, target_type="api_key", target_id=key.public_id, target_name=key.name,
                 before=before, after=after, actor=actor)


def snapshot(key: ApiKey) -> dict:
    """The key's audited fields (never the secret or its hash)."""
    values = {field: _snapshot_value(field, getattr(key, field)) for field in EDITABLE}
    values.update(status=key.status, prefix=key.prefix)
    return values


def _snapshot_value(field: str, value):
    if field in ("allowed_models", "allowed_cidrs"):
        return split_list(value) if isinstance(value, str) or value is None else list(value)
    if field == "quota_monthly":
        return bool(value)
    return value


def _only(values: dict, fields: Iterable[str]) -> dict:
    return {field: values[field] for field in fields}


# -------------------------------------------------------------------------------------------- reading


def find_key(public_id: str) -> ApiKey | None:
    return db.session.execute(select(ApiKey).where(ApiKey.public_id == public_id)).scalar_one_or_none()


def get_key(public_id: str) -> ApiKey:
    key = find_key(public_id)
    if key is None:
        raise KeyNotFound(public_id)
    return key


def this_month() -> str:
    """'YYYY-MM' of the current UTC month, the period a monthly quota counts in."""
    return utcnow().strftime("%Y-%m")


def display_status(key: ApiKey, now: datetime | None = None) -> str:
    """active | disabled | revoked | expired, as shown to admins (revoked wins, then expired)."""
    if key.status == "revoked":
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or utcnow()):
        return "expired"
    return key.status


@dataclass(frozen=True)
class KeyPage:
    items: list[ApiKey]
    total: int
    page: int
    pages: int
    status: str
    search: str

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def list_keys(status: str = "all", search: str = "", page: int = 1, per_page: int = PAGE_SIZE) -> KeyPage:
    """One page of keys, newest first, filtered by displayed status and searched by name or prefix.
    Counts and pages come from indexed queries with LIMIT/OFFSET; rows outside the page are never loaded."""
    status = status if status in LIST_FILTERS else "all"
    search = (search or "").strip()[:NAME_MAX]
    conditions = _status_conditions(status, utcnow())
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(ApiKey.name.ilike(pattern, escape="\\"),
                              ApiKey.prefix.ilike(pattern, escape="\\")))
    total = db.session.execute(select(func.count()).select_from(ApiKey).where(*conditions)).scalar_one()
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    # Sort and page only (created_at, id) pairs, then load the page's rows: sorting whole rows is slower.
    ids = list(db.session.execute(
        select(ApiKey.id).where(*conditions).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        .limit(per_page).offset((page - 1) * per_page)).scalars())
    rows = {key.id: key for key in db.session.execute(select(ApiKey).where(ApiKey.id.in_(ids))).scalars()}
    items = [rows[key_id] for key_id in ids]
    return KeyPage(items=items, total=total, page=page, pages=pages, status=status, search=search)


def _status_conditions(status: str, now: datetime) -> list:
    not_expired = or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    if status == "active":
        return [ApiKey.status == "active", not_expired]
    if status == "disabled":
        return [ApiKey.status == "disabled", not_expired]
    if status == "revoked":
        return [ApiKey.status == "revoked"]
    if status == "expired":
        return [ApiKey.status != "revoked", ApiKey.expires_at <= now]
    return []


def iter_keys(status: str = "all", batch: int = 500) -> Iterable[ApiKey]:
    """Every key (for the command line), oldest first, read in batches by id."""
    last_id = 0
    conditions = _status_conditions(status if status in LIST_FILTERS else "all", utcnow())
    while True:
        rows = list(db.session.execute(select(ApiKey).where(ApiKey.id > last_id, *conditions)
                                       .order_by(ApiKey.id).limit(batch)).scalars())
        yield from rows
        if len(rows) < batch:
            return
        last_id = rows[-1].id
