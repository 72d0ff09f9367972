"""API keys: verification for the gateway, and the lifecycle for admins (create, edit, disable, enable,
revoke, list). The only place in this domain that commits; every change records an audit event."""
from __future__ import annotations

import ipaddress
import math
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select

from app import rawsql
from app.audit import service as audit
from app.catalog import service as catalog
from app.catalog.demo import is_demo_entry
from app.database import utcnow
from app.extensions import db
from app.keys import conversation_fields, secrets
from app.keys.context import KeyContext, KeyRejection
from app.keys.models import SCOPES, ApiKey

NAME_MAX = 100
LIMIT_MAX = 2_147_483_647  # fits the INTEGER columns on every database
QUOTA_MAX_MICRO = 9_000_000_000_000_000_000  # fits BIGINT
MICRO = 1_000_000
LIST_FILTERS = ("all", "active", "disabled", "revoked", "expired")
PAGE_SIZE = 25
LIMIT_FIELDS = ("rpm", "rph", "monthly_requests", "max_concurrent")
# What an admin may set; audit snapshots show these plus the status (never the secret or its hash).
EDITABLE = ("name", "expires_at", "scope", "allowed_models", "allowed_cidrs", "quota_micro", "quota_monthly",
            *LIMIT_FIELDS, *conversation_fields.FIELDS)

_api_keys = ApiKey.__table__
_VERIFY_COLUMNS = [_api_keys.c[name] for name in (
    "id", "public_id", "name", "prefix", "scope", "status", "expires_at", "allowed_models", "allowed_cidrs",
    "quota_micro", "quota_monthly", "quota_period", "used_micro", "reserved_micro", *LIMIT_FIELDS,
    *conversation_fields.FIELDS)]
_VERIFY = select(*_VERIFY_COLUMNS).where(_api_keys.c.secret_hash == bindparam("secret_hash"))


class KeyInputError(ValueError):
    """Input that cannot be saved: `errors` maps a field name to a message for the admin."""

    def __init__(self, errors: Mapping[str, object]):
        self.errors = {field: str(message) for field, message in errors.items()}
        super().__init__(" ".join(self.errors.values()))


class KeyNotFound(LookupError):
    """No key has this public id."""


# ---------------------------------------------------------------------------------------------- gateway


def verify_key(raw: str | None, now: datetime | None = None) -> KeyContext | KeyRejection:
    """The gateway's key check: the checksum first (a malformed key never reaches the database), then one
    indexed lookup by HMAC. Nothing is cached, so a revocation made by any process applies to the very
    next request."""
    if not raw or not secrets.is_well_formed(raw):
        return KeyRejection("malformed")
    row = _lookup_by_hash(db.engine, secrets.hash_key(current_app.config["PFORTE_KEY_PEPPER"], raw))
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


class _CompiledLookup:
    """The Core SELECT compiled once per engine, with the dialect's result processors (e.g. SQLite's
    text → datetime), run on a DBAPI connection (app.rawsql: the Connection/Result layers cost several
    times the query itself)."""

    def __init__(self, engine):
        compiled = _VERIFY.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        self.processors = [column.type._cached_result_processor(engine.dialect, None)
                           for column in _VERIFY_COLUMNS]

    def params(self, digest: str):
        return (digest,) if self.positional else {"secret_hash": digest}

    def convert(self, row):
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(self.processors, row, strict=True))


_compiled_lookups: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _lookup_by_hash(engine, digest: str):
    lookup = _compiled_lookups.get(engine)
    if lookup is None:
        lookup = _compiled_lookups[engine] = _CompiledLookup(engine)
    row = rawsql.fetch_one(engine, lookup.sql, lookup.params(digest))
    return None if row is None else lookup.convert(row)


def split_list(text: str | None) -> list[str]:
    """The stored comma-separated list → its items ('' and None are the empty list)."""
    return [item for item in (text or "").split(",") if item]


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
        key.quota_period = utcnow().strftime("%Y-%m")
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
        key.quota_period = utcnow().strftime("%Y-%m")
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


# ------------------------------------------------------------------------------------------ validation


def clean_values(values: Mapping[str, object], *, creating: bool, current: ApiKey | None = None) -> dict:
    """Check typed values (as parsed from a form or the command line) and return them ready for the row.
    Raises KeyInputError with one message per field, so a form can show all of them at once."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    errors: dict[str, object] = {}
    clean: dict[str, object] = {}
    if creating or "name" in values:
        name = str(values.get("name") or "").strip()
        if not name:
            errors["name"] = _l("Enter a name for the key.")
        elif len(name) > NAME_MAX:
            errors["name"] = _l("The name can have at most %(max)d characters.", max=NAME_MAX)
        clean["name"] = name
    if "expires_at" in values:
        expires_at = values["expires_at"]
        unchanged = current is not None and expires_at == current.expires_at
        if expires_at is not None and not unchanged and expires_at <= utcnow():
            errors["expires_at"] = _l("The expiration date must lie in the future.")
        clean["expires_at"] = expires_at
    if "scope" in values:
        scope = values["scope"] or "full"
        if scope not in SCOPES:
            errors["scope"] = _l("Choose one of the permission modes.")
        clean["scope"] = scope
    if "allowed_models" in values:
        models = _unique(str(m).strip() for m in values["allowed_models"] or ())
        if any(len(m) > 200 or "," in m for m in models):
            errors["allowed_models"] = _l("A model id has at most 200 characters and no comma.")
        clean["allowed_models"] = ",".join(models) or None
    if "allowed_cidrs" in values:
        networks, problem = normalise_networks(values["allowed_cidrs"] or ())
        if problem is not None:
            errors["allowed_cidrs"] = problem
        clean["allowed_cidrs"] = ",".join(networks) or None
    if "quota_micro" in values:
        quota = values["quota_micro"]
        if quota is not None and not 0 <= quota <= QUOTA_MAX_MICRO:
            errors["quota_micro"] = _l("The quota must be zero or more credits.")
        clean["quota_micro"] = quota
    if "quota_monthly" in values:
        clean["quota_monthly"] = bool(values["quota_monthly"])
    for field in LIMIT_FIELDS:
        if field in values:
            limit = values[field]
            if limit is not None and not 1 <= limit <= LIMIT_MAX:
                errors[field] = _l("A limit must be a whole number of at least 1.")
            clean[field] = limit
    conversation_fields.clean(values, errors, clean)
    if errors:
        raise KeyInputError(errors)
    return clean


def normalise_networks(entries: Iterable[str]) -> tuple[list[str], object | None]:
    """IP addresses and CIDR ranges (IPv4 and IPv6) → their canonical network form, or a message."""
    networks = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return [], _l("“%(entry)s” is not an IP address or CIDR range "
                          "(e.g. 10.0.0.0/8 or 2001:db8::/32).", entry=text[:60])
        networks.append(str(network))
    return _unique(networks), None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


# -------------------------------------------------------------------------------------------- reading


def find_key(public_id: str) -> ApiKey | None:
    return db.session.execute(select(ApiKey).where(ApiKey.public_id == public_id)).scalar_one_or_none()


def get_key(public_id: str) -> ApiKey:
    key = find_key(public_id)
    if key is None:
        raise KeyNotFound(public_id)
    return key


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


def enabled_model_count() -> int:
    """How many models clients can use."""
    return catalog.enabled_model_count()


def model_choices() -> list[dict]:
    """The catalog's models ({"id", "name", "enabled", "demo"}) for the allow-list checkboxes."""
    return [{"id": entry.public_id, "name": entry.display_name, "enabled": entry.enabled,
             "demo": is_demo_entry(entry)} for entry in catalog.list_models(enabled_only=False)]
