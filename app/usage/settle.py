"""Settling API requests: short write transactions on a DBAPI connection (app.rawsql, no ORM).

It writes the request-log row (metadata only, never prompt or completion), books the cost on the key
(used credits, last-used time and IP), adds to the monthly totals, settles the budget reservation in the
same transaction and finally releases the concurrency slot. Called from the gateway's `finally`, so it
never raises: a failure is logged and the client's answer stands.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, insert, or_, update
from sqlalchemy.engine import Engine

from app import rawsql
from app.client_text import UNKNOWN_MODEL
from app.database import utcnow
from app.keys.models import ApiKey
from app.rawsql import GroupWriter, RawTransaction, until_idle
from app.usage.models import RequestLog, UsageMonthly

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RequestRecord:
    """What one API request leaves behind."""

    request_id: str
    endpoint: str
    status: int
    key_id: int | None = None
    model: str | None = None
    stream: bool = False
    error_code: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    credits_micro: int = 0
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    client_ip: str | None = None
    usage_estimated: bool = False
    catalog_model: bool = True  # `model` is a catalog model or assistant id; else its monthly row is `unknown`


_api_keys = ApiKey.__table__.c
_logs = RequestLog.__table__
_monthly = UsageMonthly.__table__
LOG_COLUMNS = ("created_at", "request_id", "key_id", "model", "endpoint", "stream", "status", "error_code",
               "input_tokens", "output_tokens", "credits_micro", "latency_ms", "ttfb_ms", "client_ip",
               "usage_estimated")
INSERT_LOG = insert(_logs).inline()  # inline: no RETURNING of the new id
# The key's used credits start again at this request's cost when a monthly quota enters a new month.
_BOOK_KEY = {
    "used_micro": case((and_(_api_keys.quota_monthly, or_(_api_keys.quota_period.is_(None),
                                                          _api_keys.quota_period != bindparam("month"))),
                        bindparam("cost")),
                       else_=_api_keys.used_micro + bindparam("cost")),
    "quota_period": case((_api_keys.quota_monthly, bindparam("month")), else_=_api_keys.quota_period),
    "last_used_at": bindparam("now"),
    "last_used_ip": bindparam("ip"),
}
UPDATE_KEY = update(ApiKey.__table__).where(_api_keys.id == bindparam("key_id")).values(_BOOK_KEY)
# The key's share of a budget reservation is released in the same statement.
UPDATE_KEY_RELEASING = UPDATE_KEY.values(reserved_micro=case(
    (_api_keys.reserved_micro > bindparam("reserved"), _api_keys.reserved_micro - bindparam("reserved")),
    else_=0))
MONTHLY_COLUMNS = ("month", "key_id", "model", "requests", "errors", "input_tokens", "output_tokens",
                   "credits_micro")


def _upsert_monthly(make_insert):
    """Add one request to its month's totals: INSERT … ON CONFLICT DO UPDATE, in the dialect's construct."""
    statement = make_insert(_monthly).inline()
    return statement.on_conflict_do_update(
        index_elements=[_monthly.c.month, _monthly.c.key_id, _monthly.c.model],
        set_={column: _monthly.c[column] + statement.excluded[column]
              for column in ("requests", "errors", "input_tokens", "output_tokens", "credits_micro")})


UPSERT_MONTHLY = {name: _upsert_monthly(make) for name, make in rawsql.DIALECT_INSERTS.items()}


BATCH_WAIT_SECONDS = 0.05
_wait_for_idle = until_idle(BATCH_WAIT_SECONDS)


def settle_request(engine: Engine, record: RequestRecord, reservation=None, grant=None,
                   now: datetime | None = None) -> None:
    """Write everything for one request, then release the concurrency slot. Returns once it is committed.
    On SQLite, requests that settle at about the same moment share one transaction (app.rawsql.GroupWriter);
    their batch is written when the event loop has nothing else to do, or after at most BATCH_WAIT_SECONDS:
    under load the bookkeeping comes after every pending request's next step (a new request's first byte
    is not kept waiting behind commits) and batches grow; on an idle process it is one turn of the loop."""
    try:
        item = (record, reservation, now or utcnow())
        group = GroupWriter.for_engine(engine, "settle", _wait_for_idle)
        if group is None:
            with RawTransaction(engine) as conn:
                _write(conn, item)
        else:
            group.run(lambda conn: _write(conn, item))
    except Exception:
        log.exception("settling request %s failed", record.request_id)
    finally:
        if grant is not None:
            try:
                grant.release()
            except Exception:
                log.exception("releasing the limits of request %s failed", record.request_id)


def _write(conn: RawTransaction, item: tuple) -> None:
    """The settlement's statements inside the caller's transaction."""
    record, reservation, now = item
    conn.execute(INSERT_LOG, {
        "created_at": now, "request_id": record.request_id, "key_id": record.key_id, "model": record.model,
        "endpoint": record.endpoint, "stream": record.stream, "status": record.status,
        "error_code": record.error_code, "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens, "credits_micro": record.credits_micro,
        "latency_ms": record.latency_ms, "ttfb_ms": record.ttfb_ms, "client_ip": record.client_ip,
        "usage_estimated": record.usage_estimated}, LOG_COLUMNS)
    if record.key_id is not None:
        month = now.strftime("%Y-%m")
        cost = record.credits_micro
        reserved = reservation.key_reserved_micro if reservation is not None else 0
        conn.execute(UPDATE_KEY_RELEASING if reserved else UPDATE_KEY, {
            "month": month, "cost": cost, "now": now, "ip": record.client_ip, "reserved": reserved,
            "key_id": record.key_id})
        conn.execute(UPSERT_MONTHLY[conn.dialect.name], {
            "month": month, "key_id": record.key_id,
            "model": (record.model or "") if record.catalog_model else UNKNOWN_MODEL, "requests": 1,
            "errors": 1 if record.status >= 400 else 0, "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens, "credits_micro": cost}, MONTHLY_COLUMNS)
    if reservation is not None:
        reservation.settle_org(conn, record.credits_micro)
