"""A plain store for the organisation settings the owner changes at run time: the monthly credit allowance and
the per-IP request limit (which app.policy enforces), and other domains' values (get_setting, set_setting).
Stored as JSON values in the `settings` table. The gateway reads them through a per-process cache of
CACHE_SECONDS, so a change reaches every process within that time. The only place here that commits."""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from app.audit import service as audit
from app.config import valid_rate_limit
from app.credits import MICRO
from app.extensions import db
from app.settings.models import Setting

log = logging.getLogger(__name__)

ALLOWANCE = "org_allowance_micro"
PER_IP = "per_ip_limit"
KEEP_CONVERSATIONS = "keep_conversations_default"
CACHE_SECONDS = 5.0
MAX_CREDITS = 10**12
MAX_PER_IP = 1_000_000
UNITS = ("second", "minute", "hour", "day")
FALLBACK_PER_IP = "60/minute"
_NUMBER = re.compile(r"^\d+([.,]\d{1,6})?$")
_CACHE = "pforte_settings_cache"
_lock = threading.Lock()


class SettingsError(ValueError):
    """Invalid input; `errors` maps a form field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class OrgSettings:
    allowance_micro: int | None  # None = unlimited
    per_ip_limit: str | None  # e.g. "120/minute"; None = the server default PFORTE_RATELIMIT_PER_IP
    keep_conversations: bool | None = None  # None = the server default PFORTE_KEEP_CONVERSATIONS_DEFAULT

    @property
    def per_ip_count(self) -> int | None:
        return int(self.per_ip_limit.split("/")[0]) if self.per_ip_limit else None

    @property
    def per_ip_unit(self) -> str:
        return self.per_ip_limit.split("/")[1] if self.per_ip_limit else "minute"


# --- reading ---------------------------------------------------------------------------------------------

def _read(conn) -> OrgSettings:
    rows = conn.execute(select(Setting.key, Setting.value)
                        .where(Setting.key.in_((ALLOWANCE, PER_IP, KEEP_CONVERSATIONS))))
    values = {}
    for key, value in rows:
        try:
            values[key] = json.loads(value)
        except ValueError:
            log.error("setting %s holds invalid JSON; using the default", key)
    keep = values.get(KEEP_CONVERSATIONS)
    return OrgSettings(values.get(ALLOWANCE), values.get(PER_IP), keep if isinstance(keep, bool) else None)


def current() -> OrgSettings:
    """The stored settings, read now."""
    return _read(db.session)


def cached() -> OrgSettings:
    """The settings as the gateway sees them: read at most every CACHE_SECONDS per process."""
    entry = current_app.extensions.get(_CACHE)
    now = time.monotonic()
    if entry is None or entry[0] <= now:
        with _lock:
            entry = current_app.extensions.get(_CACHE)
            if entry is None or entry[0] <= now:
                with db.engine.connect() as conn:
                    entry = (now + CACHE_SECONDS, _read(conn))
                current_app.extensions[_CACHE] = entry
    return entry[1]


def org_allowance_micro() -> int | None:
    """The organisation's monthly allowance in micro-credits, None when unlimited."""
    return cached().allowance_micro


def default_per_ip() -> str:
    """PFORTE_RATELIMIT_PER_IP, or 60/minute when that is not a valid limit (logged)."""
    return _checked_per_ip(str(current_app.config.get("PFORTE_RATELIMIT_PER_IP") or FALLBACK_PER_IP))


@lru_cache(maxsize=8)
def _checked_per_ip(spec: str) -> str:
    """The configuration checks the value at start; one set on app.config later is checked here, once."""
    if not valid_rate_limit(spec):
        log.error("PFORTE_RATELIMIT_PER_IP=%r is not a valid limit; using %s", spec, FALLBACK_PER_IP)
        return FALLBACK_PER_IP
    return spec


def per_ip_limit() -> str:
    """The per-IP request limit in force: the owner's setting, else the server default."""
    return cached().per_ip_limit or default_per_ip()


def keep_conversations_default() -> bool:
    """Whether keys without their own choice keep conversations: the owner's setting, else the server's."""
    keep = cached().keep_conversations
    return bool(current_app.config.get("PFORTE_KEEP_CONVERSATIONS_DEFAULT")) if keep is None else keep


# --- changing ------------------------------------------------------------------------------------------

def parse_credits(text: str) -> int | None:
    """'1000' or '12.5' (comma allowed as the decimal mark) → micro-credits; '' → None (unlimited)."""
    cleaned = (text or "").strip().replace(" ", "").replace("_", "")
    if not cleaned:
        return None
    if not _NUMBER.match(cleaned):
        raise ValueError(cleaned)
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes this
        raise ValueError(cleaned) from exc
    if value > MAX_CREDITS:
        raise ValueError(cleaned)
    return int(value * MICRO)


def format_credits(micro: int | None) -> str:
    """Micro-credits as the plain number the form accepts ('' for unlimited)."""
    if micro is None:
        return ""
    whole, rest = divmod(micro, MICRO)
    return f"{whole}.{rest:06d}".rstrip("0") if rest else str(whole)


def _parse_per_ip(count: str, unit: str) -> str | None:
    count = (count or "").strip()
    if not count:
        return None
    if not count.isdigit() or not 1 <= int(count) <= MAX_PER_IP or unit not in UNITS:
        raise ValueError(count)
    return f"{int(count)}/{unit}"


def _describe(values: OrgSettings) -> dict:
    return {"org_allowance_credits": format_credits(values.allowance_micro) or "unlimited",
            "per_ip_limit": values.per_ip_limit or "default"}


def get_setting(key: str, default=None):
    """The stored value of `key`, or `default` when it is unset or unreadable."""
    row = db.session.get(Setting, key)
    if row is None:
        return default
    try:
        return json.loads(row.value)
    except ValueError:
        return default


def set_setting(key: str, value) -> None:
    """Store `value` (JSON-serialisable) under `key`. Not committed here: the calling service commits."""
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)


def update(allowance: str, per_ip_count: str, per_ip_unit: str,
           on_allowance_set: Callable[[object], object] | None = None) -> OrgSettings:
    """Validate and store the owner's settings with an audit event (before/after). When an allowance is set
    after a time without one, on_allowance_set(connection) runs in the same transaction (the policy
    recounts the month's counter from the request log)."""
    errors: dict[str, str] = {}
    try:
        allowance_micro = parse_credits(allowance)
    except ValueError:
        errors["allowance"] = _("Enter a number of credits such as 5000 or 12.5 (at most six decimal places "
                                "and %(max)s credits), or leave the field empty for no limit.",
                                max=f"{MAX_CREDITS:,}")
    try:
        per_ip = _parse_per_ip(per_ip_count, per_ip_unit)
    except ValueError:
        errors["per_ip"] = _("Enter a whole number of requests between 1 and %(max)s and choose a time unit, "
                             "or leave the field empty for the server default.", max=f"{MAX_PER_IP:,}")
    if errors:
        raise SettingsError(errors)
    before = current()
    after = OrgSettings(allowance_micro, per_ip, before.keep_conversations)
    if after == before:
        return after
    set_setting(ALLOWANCE, allowance_micro)
    set_setting(PER_IP, per_ip)
    if before.allowance_micro is None and allowance_micro is not None and on_allowance_set is not None:
        on_allowance_set(db.session.connection())
    audit.record("settings.update", target_type="settings", target_name="organisation",
                 before=_describe(before), after=_describe(after))
    db.session.commit()
    current_app.extensions.pop(_CACHE, None)
    return after


def set_keep_conversations_default(keep: bool) -> OrgSettings:
    """The organisation default for keys without their own choice (an audit event when it changes)."""
    before = current()
    if before.keep_conversations is not None and before.keep_conversations == keep:
        return before
    was = before.keep_conversations
    if was is None:
        was = bool(current_app.config.get("PFORTE_KEEP_CONVERSATIONS_DEFAULT"))
    set_setting(KEEP_CONVERSATIONS, bool(keep))
    audit.record("settings.keep_conversations", target_type="settings", target_name="organisation",
                 before={"keep_conversations_default": was}, after={"keep_conversations_default": bool(keep)})
    db.session.commit()
    current_app.extensions.pop(_CACHE, None)
    return current()
