"""Credits: what a request costs, and reserving its worst case against the key's quota and the
organisation's monthly allowance before it is forwarded (DESIGN §5 step 7).

Credits are integer micro-credits (app.credits); a request's cost is app.credits.cost_micro, its worst
case (what is reserved, `WorstCase`) the prompt estimate plus every choice's output at the cap the request
goes upstream with, rounded up the same way.

Small budgets: the output cap is what gives. When the remaining credits (quota − used − reserved) cannot
pay for the worst case at the cap asked for, the cap shrinks to the largest that they can pay for, and the
gateway sends that cap upstream; a request that cannot have even one token per choice (or whose prompt
alone costs more than what remains) is refused with 402. So the upstream is never asked for more than was
reserved, and the reservations in flight never add up to more than the quota: the quota is exceeded only
by what a prompt costs beyond its estimate. Once nothing remains every request is refused, even for a free
model.
The organisation allowance follows the same rule. Key row before organisation row, in every transaction,
so that concurrent reservations and settlements cannot deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, and_, bindparam, case, cast, func, or_, select, update

from app import rawsql
from app.credits import MAX_MICRO, MICRO, cost_micro, round_up
from app.keys.context import credits_used
from app.keys.models import ApiKey
from app.policy.models import OrgBudget
from app.usage.models import RequestLog

__all__ = ["MICRO", "cost_micro", "BudgetExhausted", "WorstCase", "worst_case_micro", "period_of", "month_start",
           "near_quota", "reserve_key", "release_key", "reserve_org", "settle_org", "org_status", "recount_org"]


class BudgetExhausted(Exception):
    """Not enough credits left for the request; `which` is "key" or "org", `remaining` what is left."""

    def __init__(self, which: str, remaining: int = 0):
        super().__init__(which)
        self.which = which
        self.remaining = remaining


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a request can cost as a function of its output cap per choice: the prompt estimate at the
    input price, and for each token of cap one token in every choice at the output price."""

    prompt: float  # micro-credits of the prompt estimate
    per_token: float  # micro-credits of one more token of cap

    @classmethod
    def of(cls, prompt_tokens: int, choices: int, input_price: float, output_price: float) -> WorstCase:
        return cls(_bounded(prompt_tokens) * input_price, max(1.0, _bounded(choices)) * output_price)

    def micro(self, cap: int) -> int:
        """The reservation for output cap `cap`, rounded up."""
        return round_up(self.prompt + self.per_token * _bounded(cap))

    def cap_within(self, remaining: int, wanted: int) -> int | None:
        """The largest cap up to `wanted` whose worst case `remaining` credits pay for; None when they pay for
        no request at all: nothing remains, the prompt alone costs more, or not one token per choice fits."""
        if remaining <= 0:
            return None
        if self.micro(wanted) <= remaining:
            return wanted
        if self.per_token <= 0 or remaining < self.prompt:
            return None
        cap = min(wanted, int((remaining - self.prompt) / self.per_token))
        while cap > 0 and self.micro(cap) > remaining:  # the float division may be a token too generous
            cap -= 1
        return cap if cap >= 1 else None


def _bounded(count: int) -> float:
    return float(min(max(0, count), MAX_MICRO))


def worst_case_micro(prompt_tokens_estimate: int, max_output_tokens: int, input_price: float,
                     output_price: float, choices: int = 1) -> int:
    """The most a request can cost: the prompt estimate plus max_output_tokens per choice, rounded up."""
    return WorstCase.of(prompt_tokens_estimate, choices, input_price, output_price).micro(max_output_tokens)


def period_of(now: datetime | None = None) -> str:
    """'YYYY-MM' of the UTC month (naive datetimes are taken as UTC)."""
    now = now or datetime.now(UTC)
    return f"{now.year:04d}-{now.month:02d}"


def month_start(period: str) -> datetime:
    """First instant of a 'YYYY-MM' month, naive UTC as stored in the database."""
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1)


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


def reserve_key(conn, key, worst: WorstCase, cap: int, period: str) -> tuple[int, int]:
    """Reserve against the key's quota inside the caller's transaction (a RawTransaction or a SQLAlchemy
    Connection): (the output cap the reservation covers, at most `cap`; the credits reserved)."""
    if key.quota_monthly and key.quota_period != period:
        conn.execute(RENEW_KEY, {"id": key.id, "p": period})
    amount = worst.micro(cap)
    if conn.execute(RESERVE_KEY_FITS, {"id": key.id, "w": amount}).rowcount == 1:
        return cap, amount
    row = conn.execute(LOCK_KEY, {"id": key.id}).fetchone()  # locks the row; the values are current
    if row is None or row[0] is None:
        return cap, 0  # key gone or its quota lifted since it was verified
    quota, used, reserved = row
    cap = worst.cap_within(quota - used - reserved, cap)
    if cap is None:
        raise BudgetExhausted("key", quota - used - reserved)
    amount = worst.micro(cap)
    if amount:
        conn.execute(ADD_KEY, {"id": key.id, "r": amount})
    return cap, amount


def release_key(conn, key_id: int, amount: int) -> None:
    """Give back `amount` of the key's reservation (the allowance shrank the cap after the key reserved)."""
    if amount > 0:
        conn.execute(ADD_KEY, {"id": key_id, "r": -amount})


def reserve_org(conn, allowance: int, worst: WorstCase, cap: int, period: str) -> tuple[int, int]:
    """Reserve against the organisation allowance of `period`: (the output cap covered, the credits reserved)."""
    amount = worst.micro(cap)
    params = {"p": period, "w": amount, "a": allowance}
    if conn.execute(RESERVE_ORG_FITS, params).rowcount == 1:
        return cap, amount
    conn.execute(ensure_org(conn.dialect.name), params)
    used, reserved = conn.execute(LOCK_ORG, params).fetchone()
    cap = worst.cap_within(allowance - used - reserved, cap)
    if cap is None:
        raise BudgetExhausted("org", allowance - used - reserved)
    amount = worst.micro(cap)
    if amount:
        conn.execute(ADD_ORG, {"p": period, "r": amount})
    return cap, amount


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
