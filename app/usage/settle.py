"""Settling one API request: one short write transaction with SQLAlchemy Core (no ORM objects).

It writes the request-log row (metadata only, never prompt or completion), books the cost on the key
(used credits, last-used time and IP), adds to the monthly totals, settles the budget reservation in the
same transaction and finally releases the concurrency slot. Called from the gateway's `finally`, so it
never raises: a failure is logged and the client's answer stands.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, case, insert, literal, update
from sqlalchemy.engine import Engine

from app.database import utcnow
from app.extensions import db

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


class _Statements:
    """The three statements of a settlement, built once per dialect (SQLAlchemy caches their compilation)."""

    def __init__(self, dialect: str):
        tables = db.metadata.tables
        logs, keys, monthly = tables["request_logs"], tables["api_keys"], tables["usage_monthly"]
        self.insert_log = insert(logs)
        month = bindparam("month")
        cost = bindparam("cost")
        rolls_over = keys.c.quota_monthly & ((keys.c.quota_period.is_(None)) | (keys.c.quota_period != month))
        self.update_key = (
            update(keys).where(keys.c.id == bindparam("key_id_"))
            .values(used_micro=case((rolls_over, cost), else_=keys.c.used_micro + cost),
                    quota_period=case((keys.c.quota_monthly, month), else_=keys.c.quota_period),
                    last_used_at=bindparam("now"), last_used_ip=bindparam("ip"))
        )
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        values = {"month": month, "key_id": bindparam("key_id_"), "model": bindparam("model_"),
                  "requests": literal(1), "errors": bindparam("error"), "input_tokens": bindparam("tin"),
                  "output_tokens": bindparam("tout"), "credits_micro": cost}
        statement = upsert(monthly).values(values)
        excluded = statement.excluded
        self.upsert_monthly = statement.on_conflict_do_update(
            index_elements=[monthly.c.month, monthly.c.key_id, monthly.c.model],
            set_={"requests": monthly.c.requests + 1, "errors": monthly.c.errors + excluded.errors,
                  "input_tokens": monthly.c.input_tokens + excluded.input_tokens,
                  "output_tokens": monthly.c.output_tokens + excluded.output_tokens,
                  "credits_micro": monthly.c.credits_micro + excluded.credits_micro},
        )


_statements: dict[str, _Statements] = {}


def settle_request(engine: Engine, record: RequestRecord, reservation=None, grant=None,
                   now: datetime | None = None) -> None:
    """Write everything for one request in one transaction, then release the concurrency slot."""
    try:
        statements = _statements.get(engine.dialect.name)
        if statements is None:
            statements = _statements.setdefault(engine.dialect.name, _Statements(engine.dialect.name))
        now = now or utcnow()
        row = {
            "created_at": now, "request_id": record.request_id, "key_id": record.key_id, "model": record.model,
            "endpoint": record.endpoint, "stream": record.stream, "status": record.status,
            "error_code": record.error_code, "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens, "credits_micro": record.credits_micro,
            "latency_ms": record.latency_ms, "ttfb_ms": record.ttfb_ms, "client_ip": record.client_ip,
            "usage_estimated": record.usage_estimated,
        }
        with engine.begin() as conn:
            conn.execute(statements.insert_log, row)
            if record.key_id is not None:
                month = now.strftime("%Y-%m")
                conn.execute(statements.update_key, {"key_id_": record.key_id, "cost": record.credits_micro,
                                                     "month": month, "now": now, "ip": record.client_ip})
                conn.execute(statements.upsert_monthly, {
                    "month": month, "key_id_": record.key_id, "model_": record.model or "",
                    "error": 1 if record.status >= 400 else 0, "tin": record.input_tokens,
                    "tout": record.output_tokens, "cost": record.credits_micro})
            if reservation is not None:
                reservation.settle(conn, record.credits_micro)
    except Exception:
        log.exception("settling request %s failed", record.request_id)
    finally:
        if grant is not None:
            try:
                grant.release()
            except Exception:
                log.exception("releasing the limits of request %s failed", record.request_id)
