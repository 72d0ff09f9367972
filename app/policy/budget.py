"""Credits: what a request costs, and reserving its worst case against the key's quota and the
organisation's monthly allowance before it is forwarded (DESIGN §5 step 7).

Credits are integer micro-credits (app.credits); a request's cost is app.credits.cost_micro, its worst
case (what is reserved) the same sum rounded up.

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

from sqlalchemy import BigInteger, and_, bindparam, case, cast, func, or_, select, update

from app import rawsql
from app.credits import MICRO, cost_micro
from app.keys.context import credits_used
from app.keys.models import ApiKey
from app.policy.models import OrgBudget
from app.usage.models import RequestLog

__all__ = ["MICRO", "cost_micro", "BudgetExhausted", "worst_case_micro", "period_of", "month_start", "allocate",
           "near_quota", "reserve_key", "reserve_org", "settle_org", "org_status", "recount_org"]


class BudgetExhausted(Exception):
    """No credits left; `which` is "key" or "org"."""

    def __init__(self, which: str):
        super().__init__(which)
        self.which = which


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

_key = ApiKey.__table__
_org = OrgBudget.__table__
_logs = RequestLog.__table__
_key_remaining = _key.c.quota_micro - _key.c.used_micro - _key.c.reserved_micro
_org_remaining = cast(bindparam("a"), BigInteger) - _org.c.used_micro - _org.c.reserved_micro
_this_key = _key.c.id == bindparam("id")
_this_period = _org.c.period == bindparam("p")

RENEW_KEY = update(_key).where(
    _this_key, _key.c.quota_monthly, or_(_key.c.quota_period.is_(None), _key.c.quota_period != bindparam("p"))
).values(used_micro=0, quota_period=bindparam("p"))
RESERVE_KEY_FITS = update(_key).where(
    _this_key, _key.c.quota_micro.is_not(None), _key_remaining >= bindparam("w"), _key_remaining > 0
).values(reserved_micro=_key.c.reserved_micro + bindparam("w"))
LOCK_KEY = update(_key).where(_this_key).values(reserved_micro=_key.c.reserved_micro).returning(
    _key.c.quota_micro, _key.c.used_micro, _key.c.reserved_micro)
ADD_KEY = update(_key).where(_this_key).values(reserved_micro=_key.c.reserved_micro + bindparam("r"))
RESERVE_ORG_FITS = update(_org).where(
    _this_period, and_(_org_remaining >= bindparam("w"), _org_remaining > 0)
).values(reserved_micro=_org.c.reserved_micro + bindparam("w"))
LOCK_ORG = update(_org).where(_this_period).values(reserved_micro=_org.c.reserved_micro).returning(
    _org.c.used_micro, _org.c.reserved_micro)
ADD_ORG = update(_org).where(_this_period).values(reserved_micro=_org.c.reserved_micro + bindparam("r"))
SETTLE_ORG = update(_org).where(_this_period).values(
    used_micro=_org.c.used_micro + bindparam("c"),
    reserved_micro=case((_org.c.reserved_micro > bindparam("r"), _org.c.reserved_micro - bindparam("r")),
                        else_=0))
ORG_STATUS = select(_org.c.used_micro, _org.c.reserved_micro).where(_this_period)
MONTH_LOG_TOTAL = select(func.coalesce(func.sum(_logs.c.credits_micro), 0)).where(
    _logs.c.created_at >= bindparam("start"))
SET_ORG_USED = update(_org).where(_this_period).values(used_micro=bindparam("u"))


_ENSURE_ORG = {name: make(_org).values(period=bindparam("p"), used_micro=0, reserved_micro=0)
               .on_conflict_do_nothing(index_elements=[_org.c.period])
               for name, make in rawsql.DIALECT_INSERTS.items()}


def ensure_org(dialect_name: str):
    """The statement that creates the organisation counter of period :p unless it exists."""
    return _ENSURE_ORG[dialect_name]


def reserve_key(conn, key, worst: int, period: str) -> int:
    """Reserve against the key's quota inside the caller's transaction (a RawTransaction or a SQLAlchemy
    Connection); returns the credits reserved."""
    if key.quota_monthly and key.quota_period != period:
        conn.execute(RENEW_KEY, {"id": key.id, "p": period})
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
    conn.execute(ensure_org(conn.dialect.name), params)
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
    conn.execute(ensure_org(conn.dialect.name), {"p": period})
    conn.execute(SET_ORG_USED, {"p": period, "u": used})
    return used
