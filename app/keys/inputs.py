"""Turning what admins type (form fields, command-line options) into the typed values that
validation.clean_values() checks. Text only goes in; ints, datetimes and lists come out."""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

import pytz
from flask_babel import lazy_gettext as _l

from app.credits import MICRO
from app.keys.validation import LIMIT_FIELDS, KeyInputError

NONE_WORDS = {"", "none", "unlimited", "never", "any", "all", "-"}
_SPLIT = re.compile(r"[\s,;]+")


def split_entries(text: str | None) -> list[str]:
    """'a, b\\nc' → ['a', 'b', 'c'] (commas, semicolons, spaces and new lines separate entries)."""
    return [item for item in _SPLIT.split(text or "") if item]


def parse_expiry(text: str | None, tz=pytz.UTC) -> datetime | None:
    """'YYYY-MM-DD' → the start of that day in tz, as naive UTC; the key stops working at that moment.
    A full ISO timestamp ('2030-01-31T12:00:00', taken as UTC unless it has an offset) is also accepted.
    Empty (or 'never') → None."""
    text = (text or "").strip()
    if text.lower() in NONE_WORDS:
        return None
    try:
        if len(text) == 10:
            local = tz.localize(datetime.combine(date.fromisoformat(text), time()))
        else:
            parsed = datetime.fromisoformat(text)
            local = parsed if parsed.tzinfo else pytz.UTC.localize(parsed)
    except ValueError:
        raise KeyInputError({"expires_at": _l("Enter the expiration date as YYYY-MM-DD.")}) from None
    return local.astimezone(pytz.UTC).replace(tzinfo=None)


def parse_credits(text: str | None, field: str = "quota_micro") -> int | None:
    """'12.5' credits → 12,500,000 micro-credits; empty (or 'unlimited') → None. At most 6 decimals."""
    text = (text or "").strip().replace("_", "")
    if text.lower() in NONE_WORDS:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise KeyInputError({field: _l("Enter the quota as a number of credits, e.g. 250 or 12.5.")})
    micro = amount * MICRO
    if micro != micro.to_integral_value():
        raise KeyInputError({field: _l("A quota can have at most six decimal places.")})
    return int(micro)


def parse_limit(text: str | None, field: str) -> int | None:
    """A whole number; empty (or 'none') → None, meaning no limit. Range checks are the service's."""
    text = (text or "").strip().replace("_", "")
    if text.lower() in NONE_WORDS:
        return None
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise KeyInputError({field: _l("Enter a whole number.")})
    return int(text)


def parse_flag(value: object) -> bool:
    return str(value or "").strip().lower() in {"1", "on", "true", "yes", "y"}


def values_from_form(form: Mapping, tz, *, include_expiry: bool = True) -> dict:
    """The create/edit form → typed values for the service. Collects every field's error at once."""
    values: dict[str, object] = {"name": form.get("name", ""), "scope": form.get("scope") or "full"}
    errors: dict[str, str] = {}
    models = form.getlist("models") if hasattr(form, "getlist") else list(form.get("models") or ())
    values["allowed_models"] = [m for entry in models for m in split_entries(entry)]
    values["allowed_cidrs"] = split_entries(form.get("allowed_cidrs"))
    values["quota_monthly"] = parse_flag(form.get("quota_monthly"))
    parsers = {"quota_micro": lambda: parse_credits(form.get("quota"))}
    if include_expiry:
        parsers["expires_at"] = lambda: parse_expiry(form.get("expires"), tz)
    for field in LIMIT_FIELDS:
        parsers[field] = lambda field=field: parse_limit(form.get(field), field)
    if "keep_conversations" in form:  # default | on | off
        values["keep_conversations"] = {"on": True, "off": False}.get(form.get("keep_conversations"))
    if "assistant_id" in form:
        values["assistant_id"] = (form.get("assistant_id") or "").strip() or None
    for field, parse in parsers.items():
        try:
            values[field] = parse()
        except KeyInputError as exc:
            errors.update(exc.errors)
    if errors:
        error = KeyInputError(errors)
        error.partial = values  # what could be read, so that the service can check the rest
        raise error
    return values
