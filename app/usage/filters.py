"""Which request-log rows a usage page or export covers: the filter, read from query arguments.

Days are UTC days; start and end are inclusive."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l

from app.database import utcnow
from app.usage.directory import key_summary
from app.usage.models import RequestLog

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 366


class UsageInputError(ValueError):
    """Bad filter or setting input; the message is safe to show."""


@dataclass(frozen=True)
class UsageFilter:
    """Which request-log rows a dashboard or export covers (start and end are inclusive UTC days)."""

    start: date
    end: date
    key_public_id: str | None = None
    key_id: int | None = None
    key_name: str | None = None
    model: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query_args(self) -> dict[str, str]:
        """The filter as URL query arguments (for export links and the filter form)."""
        args = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.key_public_id:
            args["key"] = self.key_public_id
        if self.model:
            args["model"] = self.model
        return args

    def last_days_args(self, days: int) -> dict[str, str]:
        """Query arguments for the same key and model over the `days` days ending with this filter's end."""
        return {**self.query_args(), "start": (self.end - timedelta(days=days - 1)).isoformat()}


def default_filter(today: date | None = None) -> UsageFilter:
    end = today or utcnow().date()
    return UsageFilter(start=end - timedelta(days=DEFAULT_RANGE_DAYS - 1), end=end)


def parse_filter(args: Mapping[str, str]) -> tuple[UsageFilter, list[str]]:
    """A filter from query arguments (start, end, key, model). Bad parts fall back to defaults and are
    reported in the returned messages, so the page still renders."""
    base = default_filter()
    errors: list[str] = []
    start = _parse_day(args.get("start"), base.start, _l("start date"), errors)
    end = _parse_day(args.get("end"), base.end, _l("end date"), errors)
    if start > end:
        errors.append(str(_l("The start date must not be after the end date.")))
        start, end = base.start, base.end
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        errors.append(str(_l("Choose a range of at most %(days)d days.", days=MAX_RANGE_DAYS)))
        start = end - timedelta(days=MAX_RANGE_DAYS - 1)
    model = (args.get("model") or "").strip()[:200] or None
    key_public_id = (args.get("key") or "").strip()[:32] or None
    key_id = key_name = None
    if key_public_id:
        key = key_summary(key_public_id)
        if key is None:
            errors.append(str(_l("There is no key with the id %(id)s.", id=key_public_id)))
            key_public_id = None
        else:
            key_id, key_name = key["id"], key["name"]
    return UsageFilter(start, end, key_public_id, key_id, key_name, model), errors


def _parse_day(raw: str | None, fallback: date, label, errors: list[str]) -> date:
    raw = (raw or "").strip()
    if not raw:
        return fallback
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(str(_l("The %(field)s must be a date like 2025-01-31.", field=label)))
        return fallback


def conditions(f: UsageFilter) -> list:
    """The WHERE conditions of the filter on the request log."""
    conditions = [
        RequestLog.created_at >= datetime.combine(f.start, time.min),
        RequestLog.created_at < datetime.combine(f.end + timedelta(days=1), time.min),
    ]
    if f.key_id is not None:
        conditions.append(RequestLog.key_id == f.key_id)
    if f.model:
        conditions.append(RequestLog.model == f.model)
    return conditions
