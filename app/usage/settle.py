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

from sqlalchemy.engine import Engine

from app.database import utcnow
from app.rawsql import GroupWriter, RawTransaction, until_idle

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


def cost_micro(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> int:
    """Micro-credits for a request; prices are credits per million tokens, so tokens × price is micro."""
    return max(0, round(input_tokens * input_price + output_tokens * output_price))


_KEY_UPDATE = (
    "UPDATE api_keys SET "
    "used_micro = CASE WHEN quota_monthly AND (quota_period IS NULL OR quota_period <> ?) THEN ? "
    "ELSE used_micro + ? END, "
    "quota_period = CASE WHEN quota_monthly THEN ? ELSE quota_period END, "
    "last_used_at = ?, last_used_ip = ?{release} WHERE id = ?"
)
# The key's share of a budget reservation is released in the same statement.
_RELEASE = ", reserved_micro = CASE WHEN reserved_micro > ? THEN reserved_micro - ? ELSE 0 END"
_LOG_INSERT = (
    "INSERT INTO request_logs (created_at, request_id, key_id, model, endpoint, stream, status, error_code, "
    "input_tokens, output_tokens, credits_micro, latency_ms, ttfb_ms, client_ip, usage_estimated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MONTHLY_UPSERT = (
    "INSERT INTO usage_monthly (month, key_id, model, requests, errors, input_tokens, output_tokens, "
    "credits_micro) VALUES (?, ?, ?, 1, ?, ?, ?, ?) "
    "ON CONFLICT (month, key_id, model) DO UPDATE SET "
    "requests = usage_monthly.requests + 1, errors = usage_monthly.errors + excluded.errors, "
    "input_tokens = usage_monthly.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_monthly.output_tokens + excluded.output_tokens, "
    "credits_micro = usage_monthly.credits_micro + excluded.credits_micro"
)


class _Statements:
    """The settlement's SQL in the driver's own parameter style."""

    def __init__(self, paramstyle: str, dialect: str):
        convert = (lambda sql: sql) if paramstyle == "qmark" else (lambda sql: sql.replace("?", "%s"))
        self.insert_log = convert(_LOG_INSERT)
        self.update_key = convert(_KEY_UPDATE.format(release=""))
        self.update_key_releasing = convert(_KEY_UPDATE.format(release=_RELEASE))
        self.upsert_monthly = convert(_MONTHLY_UPSERT)
        # SQLite stores DateTime as text in SQLAlchemy's format; other drivers take datetime objects.
        self.timestamp = (lambda now: now.strftime("%Y-%m-%d %H:%M:%S.%f")) if dialect == "sqlite" else (
            lambda now: now)


_statements: dict[tuple, _Statements] = {}
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
    dialect = conn.engine.dialect
    statements = _statements.get((dialect.name, dialect.paramstyle))
    if statements is None:
        statements = _statements.setdefault((dialect.name, dialect.paramstyle),
                                            _Statements(dialect.paramstyle, dialect.name))
    run = conn.execute_sql
    record, reservation, now = item
    stamp = statements.timestamp(now)
    run(statements.insert_log, (
        stamp, record.request_id, record.key_id, record.model, record.endpoint, record.stream,
        record.status, record.error_code, record.input_tokens, record.output_tokens,
        record.credits_micro, record.latency_ms, record.ttfb_ms, record.client_ip,
        record.usage_estimated))
    if record.key_id is not None:
        month = now.strftime("%Y-%m")
        cost = record.credits_micro
        reserved = reservation.key_reserved_micro if reservation is not None else 0
        if reserved:
            run(statements.update_key_releasing, (month, cost, cost, month, stamp, record.client_ip,
                                                  reserved, reserved, record.key_id))
        else:
            run(statements.update_key, (month, cost, cost, month, stamp, record.client_ip,
                                        record.key_id))
        run(statements.upsert_monthly, (
            month, record.key_id, record.model or "", 1 if record.status >= 400 else 0,
            record.input_tokens, record.output_tokens, cost))
    if reservation is not None:
        reservation.settle_org(conn, record.credits_micro)
