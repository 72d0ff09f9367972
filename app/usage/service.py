"""Usage reading: dashboard aggregations, CSV exports, per-key activity, and request-log retention.

All aggregation happens in SQL (GROUP BY day/key/model/status) with functions that SQLite and PostgreSQL
share. Days are UTC days. The per-request rows are purged after the retention period; the monthly totals
(`UsageMonthly`, written by settle) are never purged.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, delete, func, select

from app.database import utcnow
from app.extensions import db
from app.usage.models import RequestLog, UsageMonthly

log = logging.getLogger(__name__)

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 366
DEFAULT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
RETENTION_SETTING = "retention_days"
RECENT_LIMIT = 50
TOP_LIMIT = 10
PURGE_BATCH = 5000
MICRO = 1_000_000


class UsageInputError(ValueError):
    """Bad filter or setting input; the message is safe to show."""


class UnknownKey(LookupError):
    """No key with this public id."""


# --- filters --------------------------------------------------------------------------------------

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
        key = _key_summary(key_public_id)
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


def _conditions(f: UsageFilter) -> list:
    conditions = [
        RequestLog.created_at >= datetime.combine(f.start, time.min),
        RequestLog.created_at < datetime.combine(f.end + timedelta(days=1), time.min),
    ]
    if f.key_id is not None:
        conditions.append(RequestLog.key_id == f.key_id)
    if f.model:
        conditions.append(RequestLog.model == f.model)
    return conditions


# --- aggregation ----------------------------------------------------------------------------------

@dataclass
class UsageRow:
    """Totals for one group (a day, a key, a model, a status or a month)."""

    label: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    credits_micro: int = 0
    ref: str | None = None  # e.g. the key's public id, for links

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def credits(self) -> float:
        return self.credits_micro / MICRO

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Dashboard:
    filter: UsageFilter
    totals: UsageRow
    daily: list[UsageRow]
    keys: list[UsageRow]
    models: list[UsageRow]
    statuses: list[UsageRow]
    monthly: list[UsageRow]
    avg_latency_ms: float | None = None
    avg_ttfb_ms: float | None = None
    key_choices: list[dict] = field(default_factory=list)
    model_choices: list[str] = field(default_factory=list)


def _sums():
    """The aggregate columns every grouping shares, in UsageRow order."""
    return (
        func.count(RequestLog.id),
        func.coalesce(func.sum(case((RequestLog.status >= 400, 1), else_=0)), 0),
        func.coalesce(func.sum(RequestLog.input_tokens), 0),
        func.coalesce(func.sum(RequestLog.output_tokens), 0),
        func.coalesce(func.sum(RequestLog.credits_micro), 0),
    )


def _row(label: str, values, ref: str | None = None) -> UsageRow:
    requests, errors, input_tokens, output_tokens, credits = (int(v or 0) for v in values)
    return UsageRow(label, requests, errors, input_tokens, output_tokens, credits, ref)


def totals(f: UsageFilter) -> tuple[UsageRow, float | None, float | None]:
    """Totals over the filter, with the average latency and time to first byte in ms."""
    averages = func.avg(RequestLog.latency_ms), func.avg(RequestLog.ttfb_ms)
    stmt = select(*_sums(), *averages).where(*_conditions(f))
    values = db.session.execute(stmt).one()
    avg_latency = float(values[5]) if values[5] is not None else None
    avg_ttfb = float(values[6]) if values[6] is not None else None
    return _row(str(_l("Total")), values[:5]), avg_latency, avg_ttfb


def daily(f: UsageFilter) -> list[UsageRow]:
    """One row per UTC day of the range, days without requests included (as zeros)."""
    day = func.date(RequestLog.created_at).label("day")
    stmt = select(day, *_sums()).where(*_conditions(f)).group_by(day)
    found = {str(values[0])[:10]: values[1:] for values in db.session.execute(stmt)}
    rows = []
    for offset in range(f.days):
        label = (f.start + timedelta(days=offset)).isoformat()
        rows.append(_row(label, found.get(label, (0, 0, 0, 0, 0))))
    return rows


def top_keys(f: UsageFilter, limit: int = TOP_LIMIT) -> list[UsageRow]:
    """The keys with the most credits (then requests) in the range."""
    sums = _sums()
    stmt = (select(RequestLog.key_id, *sums).where(*_conditions(f)).group_by(RequestLog.key_id)
            .order_by(sums[4].desc(), sums[0].desc()).limit(limit))
    results = db.session.execute(stmt).all()
    names = _key_names([r[0] for r in results if r[0] is not None])
    rows = []
    for key_id, *values in results:
        key = names.get(key_id)
        label = key["name"] if key else str(_l("(no key)")) if key_id is None else str(_l("(deleted key)"))
        rows.append(_row(label, values, ref=key["public_id"] if key else None))
    return rows


def top_models(f: UsageFilter, limit: int = TOP_LIMIT) -> list[UsageRow]:
    """The models with the most credits (then requests) in the range."""
    sums = _sums()
    stmt = (select(RequestLog.model, *sums).where(*_conditions(f)).group_by(RequestLog.model)
            .order_by(sums[4].desc(), sums[0].desc()).limit(limit))
    no_model = str(_l("(no model)"))
    return [_row(model or no_model, values, ref=model) for model, *values in db.session.execute(stmt)]


def statuses(f: UsageFilter) -> list[UsageRow]:
    """Requests per HTTP status (errors counts the ones ≥ 400)."""
    stmt = (select(RequestLog.status, *_sums()).where(*_conditions(f)).group_by(RequestLog.status)
            .order_by(RequestLog.status))
    return [_row(str(status), values) for status, *values in db.session.execute(stmt)]


def monthly(f: UsageFilter, months: int = 12) -> list[UsageRow]:
    """Monthly totals (kept after purges) for the months up to the filter's end, oldest first."""
    last = f.end.replace(day=1)
    first = last
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    conditions = [UsageMonthly.month >= first.strftime("%Y-%m"), UsageMonthly.month <= last.strftime("%Y-%m")]
    if f.key_id is not None:
        conditions.append(UsageMonthly.key_id == f.key_id)
    if f.model:
        conditions.append(UsageMonthly.model == f.model)
    stmt = (select(UsageMonthly.month,
                   func.coalesce(func.sum(UsageMonthly.requests), 0),
                   func.coalesce(func.sum(UsageMonthly.errors), 0),
                   func.coalesce(func.sum(UsageMonthly.input_tokens), 0),
                   func.coalesce(func.sum(UsageMonthly.output_tokens), 0),
                   func.coalesce(func.sum(UsageMonthly.credits_micro), 0))
            .where(*conditions).group_by(UsageMonthly.month).order_by(UsageMonthly.month))
    return [_row(month, values) for month, *values in db.session.execute(stmt)]


def dashboard(f: UsageFilter) -> Dashboard:
    """Everything the usage page shows for one filter."""
    total, avg_latency, avg_ttfb = totals(f)
    return Dashboard(
        filter=f, totals=total, daily=daily(f), keys=top_keys(f), models=top_models(f), statuses=statuses(f),
        monthly=monthly(f), avg_latency_ms=avg_latency, avg_ttfb_ms=avg_ttfb,
        key_choices=_key_choices(), model_choices=_model_choices(),
    )


def _model_choices() -> list[str]:
    """Model ids for the filter: the catalog's models plus any seen in the request log."""
    from app.catalog import service as catalog

    seen = db.session.scalars(select(RequestLog.model).where(RequestLog.model.is_not(None)).distinct()).all()
    return sorted({m.public_id for m in catalog.list_models(enabled_only=False)} | set(seen))


# --- CSV ------------------------------------------------------------------------------------------

EXPORTS = {
    "daily": (_l("Day"), daily),
    "keys": (_l("Key"), top_keys),
    "models": (_l("Model"), top_models),
    "statuses": (_l("HTTP status"), statuses),
    "monthly": (_l("Month"), monthly),
}
CSV_INJECTION_START = ("=", "+", "-", "@", "\t", "\r")


def export_csv(f: UsageFilter, table: str) -> str:
    """One dashboard table as CSV text (credits as decimal credits). Unknown table → UsageInputError."""
    if table not in EXPORTS:
        raise UsageInputError(str(_l("Unknown export %(name)s.", name=table)))
    label, build = EXPORTS[table]
    rows = build(f, limit=10_000) if build in (top_keys, top_models) else build(f)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [str(label), "requests", "errors", "input_tokens", "output_tokens", "total_tokens", "credits"]
    if table == "keys":
        header.insert(1, "key_id")
    writer.writerow(header)
    for row in rows:
        line = [_csv_safe(row.label), row.requests, row.errors, row.input_tokens, row.output_tokens,
                row.tokens, f"{row.credits_micro / MICRO:.6f}"]
        if table == "keys":
            line.insert(1, row.ref or "")
        writer.writerow(line)
    return out.getvalue()


def _csv_safe(text: str) -> str:
    """Neutralise cells a spreadsheet would run as a formula (key names are chosen by admins)."""
    return "'" + text if text.startswith(CSV_INJECTION_START) else text


def export_filename(f: UsageFilter, table: str) -> str:
    return f"pforte-usage-{table}-{f.start.isoformat()}-{f.end.isoformat()}.csv"


# --- one key --------------------------------------------------------------------------------------

@dataclass
class KeyActivity:
    key: dict
    recent: list[RequestLog]
    month: str
    month_total: UsageRow
    month_models: list[UsageRow]


def key_activity(public_id: str, limit: int = RECENT_LIMIT) -> KeyActivity:
    """A key's most recent requests and its totals this month (from the monthly totals).
    Raises UnknownKey when there is no such key."""
    key = _key_summary(public_id)
    if key is None:
        raise UnknownKey(public_id)
    recent = db.session.scalars(
        select(RequestLog).where(RequestLog.key_id == key["id"])
        .order_by(RequestLog.created_at.desc(), RequestLog.id.desc()).limit(limit)
    ).all()
    month = utcnow().strftime("%Y-%m")
    stmt = (select(UsageMonthly.model, UsageMonthly.requests, UsageMonthly.errors, UsageMonthly.input_tokens,
                   UsageMonthly.output_tokens, UsageMonthly.credits_micro)
            .where(UsageMonthly.key_id == key["id"], UsageMonthly.month == month)
            .order_by(UsageMonthly.credits_micro.desc(), UsageMonthly.requests.desc()))
    models = [_row(model or str(_l("(no model)")), values, ref=model) for model, *values in db.session.execute(stmt)]
    total = UsageRow(str(_l("Total")))
    for row in models:
        total.requests += row.requests
        total.errors += row.errors
        total.input_tokens += row.input_tokens
        total.output_tokens += row.output_tokens
        total.credits_micro += row.credits_micro
    return KeyActivity(key=key, recent=list(recent), month=month, month_total=total, month_models=models)


# --- keys (through the keys domain) ---------------------------------------------------------------

def _summary(key) -> dict:
    return {"id": key.id, "public_id": key.public_id, "name": key.name, "prefix": key.prefix,
            "status": key.status}


def _key_summary(public_id: str) -> dict | None:
    """One key as a plain dict, or None if there is no such key."""
    from app.keys import service as keys

    try:
        return _summary(keys.get_key(public_id))
    except keys.KeyNotFound:
        return None


def _key_directory() -> dict[int, dict]:
    """Every key (id → plain dict), for names in the top-keys table and the key filter."""
    from app.keys import service as keys

    return {key.id: _summary(key) for key in keys.iter_keys()}


def _key_names(key_ids: list[int]) -> dict[int, dict]:
    if not key_ids:
        return {}
    wanted = set(key_ids)
    return {key_id: key for key_id, key in _key_directory().items() if key_id in wanted}


def _key_choices() -> list[dict]:
    return sorted(_key_directory().values(), key=lambda key: (key["name"].lower(), key["public_id"]))


# --- retention ------------------------------------------------------------------------------------

def retention_days() -> int:
    """How many days request-log rows are kept (the owner's setting, default 90)."""
    from app.settings import service as settings

    value = settings.get_setting(RETENTION_SETTING, DEFAULT_RETENTION_DAYS)
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_RETENTION_DAYS
    return min(max(days, MIN_RETENTION_DAYS), MAX_RETENTION_DAYS)


def set_retention_days(raw, actor: str | None = None) -> int:
    """Store the retention period (whole days, 1–3650) with an audit event. UsageInputError on bad input."""
    from app.audit import service as audit
    from app.settings import service as settings

    try:
        days = int(str(raw).strip())
    except (TypeError, ValueError):
        raise UsageInputError(str(_l("Enter the number of days as a whole number."))) from None
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise UsageInputError(str(_l("Enter between %(low)d and %(high)d days.",
                                     low=MIN_RETENTION_DAYS, high=MAX_RETENTION_DAYS)))
    before = retention_days()
    settings.set_setting(RETENTION_SETTING, days)
    audit.record("usage.retention", target_type="setting", target_id=RETENTION_SETTING,
                 before={"retention_days": before}, after={"retention_days": days}, actor=actor)
    db.session.commit()
    return days


def purge_request_logs(days: int | None = None, now: datetime | None = None) -> int:
    """Delete request-log rows older than the retention period; returns how many. Monthly totals stay.

    Deletes in batches, each its own short transaction, so that the gateway's settle writes are never
    blocked for long."""
    days = retention_days() if days is None else days
    if days < MIN_RETENTION_DAYS:
        raise UsageInputError(str(_l("Keep request logs for at least one day.")))
    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = 0
    while True:
        batch = select(RequestLog.id).where(RequestLog.created_at < cutoff).limit(PURGE_BATCH)
        ids = db.session.scalars(batch).all()
        if not ids:
            break
        db.session.execute(delete(RequestLog).where(RequestLog.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
    return removed


def start_daily_purge(app, interval_seconds: float = 86400.0):
    """Spawn the greenlet `pforte serve` runs: purge shortly after start, then once a day. Returns it.

    PFORTE_PURGE_DELAY_SECONDS (default 60) sets the wait before the first purge."""
    import gevent

    first_delay = float(app.config.get("PFORTE_PURGE_DELAY_SECONDS", 60) or 0)

    def run_forever():
        gevent.sleep(first_delay)
        while True:
            try:
                with app.app_context():
                    removed = purge_request_logs()
                    log.info("retention purge removed %d request-log rows", removed)
            except Exception:  # keep the schedule alive; the next day tries again
                log.exception("retention purge failed")
            gevent.sleep(interval_seconds)

    return gevent.spawn(run_forever)
