"""Usage reports: the dashboard's aggregations and one key's recent activity.

All aggregation happens in SQL (GROUP BY day/key/model/status) with functions that SQLite and PostgreSQL
share. The per-request rows are purged after the retention period (app.usage.retention); the monthly
totals (`UsageMonthly`, written by app.usage.settle) are never purged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from app.catalog import service as catalog
from app.credits import MICRO
from app.database import utcnow
from app.extensions import db
from app.usage.directory import key_choices, key_names, key_summary
from app.usage.filters import UsageFilter, conditions
from app.usage.models import RequestLog, UsageMonthly

RECENT_LIMIT = 50
TOP_LIMIT = 10


class UnknownKey(LookupError):
    """No key with this public id."""


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
    stmt = select(*_sums(), *averages).where(*conditions(f))
    values = db.session.execute(stmt).one()
    avg_latency = float(values[5]) if values[5] is not None else None
    avg_ttfb = float(values[6]) if values[6] is not None else None
    return _row(str(_l("Total")), values[:5]), avg_latency, avg_ttfb


def daily(f: UsageFilter) -> list[UsageRow]:
    """One row per UTC day of the range, days without requests included (as zeros)."""
    day = func.date(RequestLog.created_at).label("day")
    stmt = select(day, *_sums()).where(*conditions(f)).group_by(day)
    found = {str(values[0])[:10]: values[1:] for values in db.session.execute(stmt)}
    rows = []
    for offset in range(f.days):
        label = (f.start + timedelta(days=offset)).isoformat()
        rows.append(_row(label, found.get(label, (0, 0, 0, 0, 0))))
    return rows


def top_keys(f: UsageFilter, limit: int = TOP_LIMIT) -> list[UsageRow]:
    """The keys with the most credits (then requests) in the range."""
    sums = _sums()
    stmt = (select(RequestLog.key_id, *sums).where(*conditions(f)).group_by(RequestLog.key_id)
            .order_by(sums[4].desc(), sums[0].desc()).limit(limit))
    results = db.session.execute(stmt).all()
    names = key_names([r[0] for r in results if r[0] is not None])
    rows = []
    for key_id, *values in results:
        key = names.get(key_id)
        label = key["name"] if key else str(_l("(no key)")) if key_id is None else str(_l("(deleted key)"))
        rows.append(_row(label, values, ref=key["public_id"] if key else None))
    return rows


def top_models(f: UsageFilter, limit: int = TOP_LIMIT) -> list[UsageRow]:
    """The models with the most credits (then requests) in the range."""
    sums = _sums()
    stmt = (select(RequestLog.model, *sums).where(*conditions(f)).group_by(RequestLog.model)
            .order_by(sums[4].desc(), sums[0].desc()).limit(limit))
    no_model = str(_l("(no model)"))
    return [_row(model or no_model, values, ref=model) for model, *values in db.session.execute(stmt)]


def statuses(f: UsageFilter) -> list[UsageRow]:
    """Requests per HTTP status (errors counts the ones ≥ 400)."""
    stmt = (select(RequestLog.status, *_sums()).where(*conditions(f)).group_by(RequestLog.status)
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
        key_choices=key_choices(), model_choices=_model_choices(),
    )


def _model_choices() -> list[str]:
    """Model ids for the filter: the catalog's models plus any seen in the request log."""
    seen = db.session.scalars(select(RequestLog.model).where(RequestLog.model.is_not(None)).distinct()).all()
    return sorted({m.public_id for m in catalog.list_models(enabled_only=False)} | set(seen))


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
    key = key_summary(public_id)
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
