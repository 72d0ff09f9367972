"""Credits: what a request costs, and reserving its worst case against the key's quota and the
organisation's monthly allowance before it is forwarded (DESIGN §5 step 7).

Credits are integer micro-credits (1 credit = 1,000,000); prices are credits per million tokens, so
cost = round(input_tokens * input_price + output_tokens * output_price) micro-credits.

Small budgets: a request is admitted while the remaining credits (quota − used − reserved) are above
zero, and its reservation is its worst case capped at what remains. A key with 0.01 credits left can still
send a request whose worst case is 1 credit; that request reserves the 0.01, which leaves nothing for the
next one until something settles. A request may cost more than it reserved (a capped reservation, or a
prompt longer than estimated); the real cost is always booked, also above the quota. Once the used
credits pass the quota the remainder is negative and nothing more is admitted, so the quota is exceeded by
at most what the requests in flight at that moment could cost. Once nothing remains every request is
refused, even for a free model.
The organisation allowance follows the same rule. Key row before organisation row, in every transaction,
so that concurrent reservations and settlements cannot deadlock.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import text

from app.keys.context import credits_used

MICRO = 1_000_000


class BudgetExhausted(Exception):
    """No credits left; `which` is "key" or "org"."""

    def __init__(self, which: str):
        super().__init__(which)
        self.which = which


def cost_micro(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> int:
    """Micro-credits for a request (prices in credits per million tokens)."""
    return round(max(0, input_tokens) * input_price + max(0, output_tokens) * output_price)


def worst_case_micro(prompt_tokens_estimate: int, max_output_tokens: int, input_price: float,
                     output_price: float) -> int:
    """The most a request can cost: the prompt estimate plus max_output_tokens, rounded up."""
    return math.ceil(max(0, prompt_tokens_estimate) * input_price + max(0, max_output_tokens) * output_price)


def period_of(now: datetime | None = None) -> str:
    """'YYYY-MM' of the UTC month (naive datetimes are taken as UTC)."""
    now = now or datetime.now(UTC)
    return f"{now.year:04d}-{now.month:02d}"


def month_start(period: str) -> datetime:
    """First instant of a 'YYYY-MM' month, naive UTC as stored in the database."""
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1)


def allocate(remaining: int, worst: int) -> int | None:
    """Credits to reserve out of `remaining`, or None to refuse (see the module docstring)."""
    if remaining <= 0:
        return None
    return min(worst, remaining)


def near_quota(key, period: str) -> bool:
    """True from 80 % of the key's quota on (used plus reserved, as of the key's snapshot)."""
    if key.quota_micro is None:
        return False
    return (credits_used(key, period) + key.reserved_micro) * 5 >= key.quota_micro * 4


# --- SQL (Core, no ORM objects) ------------------------------------------------------------------------

RENEW_KEY = text(
    "UPDATE api_keys SET used_micro = 0, quota_period = :p "
    "WHERE id = :id AND quota_monthly = :yes AND (quota_period IS NULL OR quota_period <> :p)"
)
RESERVE_KEY_FITS = text(
    "UPDATE api_keys SET reserved_micro = reserved_micro + :w WHERE id = :id AND quota_micro IS NOT NULL "
    "AND quota_micro - used_micro - reserved_micro >= :w AND quota_micro - used_micro - reserved_micro > 0"
)
LOCK_KEY = text(
    "UPDATE api_keys SET reserved_micro = reserved_micro WHERE id = :id "
    "RETURNING quota_micro, used_micro, reserved_micro"
)
ADD_KEY = text("UPDATE api_keys SET reserved_micro = reserved_micro + :r WHERE id = :id")
ENSURE_ORG = text(
    "INSERT INTO org_budget (period, used_micro, reserved_micro) VALUES (:p, 0, 0) "
    "ON CONFLICT (period) DO NOTHING"
)
RESERVE_ORG_FITS = text(
    "UPDATE org_budget SET reserved_micro = reserved_micro + :w WHERE period = :p "
    "AND CAST(:a AS BIGINT) - used_micro - reserved_micro >= :w "
    "AND CAST(:a AS BIGINT) - used_micro - reserved_micro > 0"
)
LOCK_ORG = text(
    "UPDATE org_budget SET reserved_micro = reserved_micro WHERE period = :p "
    "RETURNING used_micro, reserved_micro"
)
ADD_ORG = text("UPDATE org_budget SET reserved_micro = reserved_micro + :r WHERE period = :p")
SETTLE_ORG = text(
    "UPDATE org_budget SET used_micro = used_micro + :c, "
    "reserved_micro = CASE WHEN reserved_micro > :r THEN reserved_micro - :r ELSE 0 END WHERE period = :p"
)
ORG_STATUS = text("SELECT used_micro, reserved_micro FROM org_budget WHERE period = :p")
MONTH_LOG_TOTAL = text("SELECT COALESCE(SUM(credits_micro), 0) FROM request_logs WHERE created_at >= :start")
SET_ORG_USED = text("UPDATE org_budget SET used_micro = :u WHERE period = :p")


def reserve_key(conn, key, worst: int, period: str) -> int:
    """Reserve against the key's quota inside the caller's transaction (a RawTransaction or a SQLAlchemy
    Connection); returns the credits reserved."""
    if key.quota_monthly and key.quota_period != period:
        conn.execute(RENEW_KEY, {"id": key.id, "p": period, "yes": True})
    if conn.execute(RESERVE_KEY_FITS, {"id": key.id, "w": worst}).rowcount == 1:
        return worst
    row = conn.execute(LOCK_KEY, {"id": key.id}).fetchone()  # locks the row; the values are current
    if row is None or row[0] is None:
        return 0  # key gone or its quota lifted since it was verified
    quota, used, reserved = row
    amount = allocate(quota - used - reserved, worst)
    if amount is None:
        raise BudgetExhausted("key")
    if amount:
        conn.execute(ADD_KEY, {"id": key.id, "r": amount})
    return amount


def reserve_org(conn, allowance: int, worst: int, period: str) -> int:
    """Reserve against the organisation allowance of `period`; returns the credits reserved."""
    params = {"p": period, "w": worst, "a": allowance}
    if conn.execute(RESERVE_ORG_FITS, params).rowcount == 1:
        return worst
    conn.execute(ENSURE_ORG, params)
    used, reserved = conn.execute(LOCK_ORG, params).fetchone()
    amount = allocate(allowance - used - reserved, worst)
    if amount is None:
        raise BudgetExhausted("org")
    if amount:
        conn.execute(ADD_ORG, {"p": period, "r": amount})
    return amount


def settle_org(conn, org_period: str, org_reserved: int, cost: int) -> None:
    """Book `cost` to the organisation allowance of `org_period` and free what was reserved against it."""
    conn.execute(SETTLE_ORG, {"p": org_period, "c": max(0, cost), "r": org_reserved})


def org_status(conn, period: str) -> tuple[int, int]:
    """(used, reserved) micro-credits of the organisation counter for `period`."""
    row = conn.execute(ORG_STATUS, {"p": period}).first()
    return (row.used_micro, row.reserved_micro) if row else (0, 0)


def recount_org(conn, period: str) -> int:
    """Set the organisation counter of `period` to the credits of this month's request logs (used when an
    allowance is set after a time without one, when nothing was counted). Returns the new used value."""
    used = int(conn.execute(MONTH_LOG_TOTAL, {"start": month_start(period)}).scalar() or 0)
    conn.execute(ENSURE_ORG, {"p": period})
    conn.execute(SET_ORG_USED, {"p": period, "u": used})
    return used
