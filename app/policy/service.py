"""Per-key policy for the gateway: IP allow list, rate limits and concurrency, scope, model allow list,
credit budget. A check that refuses raises PolicyDenied (an ApiError); the limit checks return a LimitGrant and
the budget check a Reservation.

Used by app/gateway/pipeline.py in the order of its steps (docs/architecture.md):
limit_ip (before step 2, so that requests with bad keys count too) → LimitGrant, check_ip (step 3),
acquire_limits (4, with limit_ip's grant) → LimitGrant whose headers() go on the response and whose release()
runs in a finally, check_scope (5), check_model / visible_models (6), reserve_budget (7) → Reservation whose
key_reserved_micro and settle_org(conn, cost) app.usage.settle books in its transaction. Rules and their
reasons: scopes.py, ip_allow.py, ratelimits.py, budget.py.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from app.api_errors import ApiError
from app.catalog.entries import ModelEntry
from app.extensions import db
from app.keys.context import KeyContext
from app.policy import budget, ip_allow, ratelimits
from app.policy.scopes import SCOPES, scope_allows
from app.rawsql import GroupWriter, RawTransaction, next_turn
from app.settings import service as settings

__all__ = ["SCOPES", "PolicyDenied", "LimitGrant", "Reservation", "limit_ip", "check_ip", "acquire_limits",
           "check_scope", "check_model", "visible_models", "reserve_budget", "normalise_ip_list",
           "org_usage", "recount_org_usage", "update_org_settings"]

_LIMITER = "pforte_policy_limiter"
_limiter_lock = threading.Lock()
INVALID_IP_ENTRY = ip_allow.InvalidEntry


# A request refused by the key's or the organisation's policy (402, 403 and 429).
PolicyDenied = ApiError


@dataclass
class LimitGrant:
    """Holds a concurrency slot (if any) until release(); headers() are added to the response."""

    response_headers: dict[str, str] | None = field(default_factory=dict)  # None: limit_ip's, made on demand
    releaser: Callable[[], None] | None = field(default=None, repr=False)
    ip_decision: ratelimits.Decision | None = field(default=None, repr=False)  # limit_ip's, for step 4

    def headers(self) -> dict[str, str]:
        if self.response_headers is None:
            self.response_headers = self.ip_decision.ip_headers()
        return self.response_headers

    def release(self) -> None:
        """Free the concurrency slot. Idempotent."""
        releaser, self.releaser = self.releaser, None
        if releaser is not None:
            releaser()


@dataclass
class Reservation:
    """Credits reserved before forwarding; settled inside the settle transaction."""

    key_id: int
    key_reserved_micro: int = 0
    org_reserved_micro: int = 0
    org_period: str | None = None  # the month booked against the organisation allowance, if limited
    output_cap: int | None = None  # the output cap per choice the reservation covers (None: no budget applies)

    def settle_org(self, conn, cost_micro: int) -> None:
        """Inside the settle transaction (an app.rawsql.RawTransaction): book cost_micro against the
        organisation allowance and release its reservation. The key's side (used credits, its reservation)
        is settled by app.usage.settle in its own UPDATE of the key."""
        if self.org_period is not None:
            budget.settle_org(conn, self.org_period, self.org_reserved_micro, cost_micro)


# --- step 3: IP allow list -------------------------------------------------------------------------------

def check_ip(key: KeyContext, client_ip: str) -> None:
    """Step 3: 403 ip_not_allowed when the key has an allow list that does not contain client_ip."""
    if key.allowed_cidrs and not ip_allow.allowed(client_ip, key.allowed_cidrs):
        raise PolicyDenied(403, "permission_error", "ip_not_allowed",
                           "This API key may not be used from your IP address.")


# --- step 4: rate limits and concurrency ------------------------------------------------------------------

def limiter() -> ratelimits.RequestLimiter:
    """This app's rate limiter (made once per app from PFORTE_RATELIMIT_STORAGE_URI)."""
    found = current_app.extensions.get(_LIMITER)
    if found is None:
        with _limiter_lock:
            found = current_app.extensions.get(_LIMITER)
            if found is None:
                found = _make_limiter()
                current_app.extensions[_LIMITER] = found
    return found


def _make_limiter() -> ratelimits.RequestLimiter:
    config = current_app.config
    # Counters of installations that share one Redis database must not mix; processes of one
    # installation share the key pepper (they could not verify keys otherwise).
    namespace = "pf:" + hashlib.sha256(b"ratelimit:" + bytes(config["PFORTE_KEY_PEPPER"])).hexdigest()[:12]
    uri = str(config.get("PFORTE_RATELIMIT_STORAGE_URI") or "memory://")
    slot_ttl = int(config.get("PFORTE_CONCURRENCY_SLOT_SECONDS") or ratelimits.DEFAULT_SLOT_SECONDS)
    return ratelimits.RequestLimiter(uri, namespace, settings.per_ip_limit, slot_ttl)


_PER = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def _refusal_message(decision: ratelimits.Decision) -> str:
    kind, limit, wait = decision.refused_kind, decision.refused_limit, decision.retry_after
    if kind == "concurrency":
        return (f"Too many concurrent requests for this API key (at most {limit} at a time). "
                f"Try again in {wait} s.")
    if kind == "month":
        return (f"Rate limit reached for this API key: {limit} requests per month. "
                "The limit resets at the start of next month (UTC).")
    if kind == "ip":
        seconds = int(decision.headers.get("X-RateLimit-Window", "60"))
        per = _PER.get(seconds, f"{seconds} seconds")
        return f"Too many requests from your IP address: {limit} per {per}. Try again in {wait} s."
    return f"Rate limit reached for this API key: {limit} requests per {kind}. Try again in {wait} s."


def _refuse(decision: ratelimits.Decision) -> PolicyDenied:
    headers = decision.headers
    if decision.refused_kind == "month":  # retrying after retry-after (≤ 60 s) cannot help
        headers = {**headers, "x-should-retry": "false"}
    return PolicyDenied(429, "rate_limit_error", "rate_limit_exceeded", _refusal_message(decision),
                        headers=headers, retry_after=decision.retry_after)


def limit_ip(client_ip: str) -> LimitGrant:
    """Before step 2: count the request against the per-IP limit (429 when refused). Every API call counts,
    whatever its key: a brute-force guard. The grant's headers go on the response even if a later step
    refuses the request."""
    decision = limiter().count_ip(client_ip)
    if not decision.allowed:
        raise _refuse(decision)
    return LimitGrant(None, ip_decision=decision)


def acquire_limits(key: KeyContext, client_ip: str, ip_grant: LimitGrant | None = None) -> LimitGrant:
    """Step 4: the key's per-minute/hour/month limits and concurrency (429 when refused); the per-IP limit too
    unless limit_ip has counted the request already (its grant is `ip_grant`). The grant's headers describe
    the tightest limit, the per-IP one included, and warn from 80 % of a monthly limit or of the quota."""
    active = limiter()
    warn = budget.near_quota(key, ratelimits.month_of(active.clock())[0])
    decision = active.check(key, client_ip, warn, ip_grant.ip_decision if ip_grant is not None else None)
    if not decision.allowed:
        raise _refuse(decision)
    return LimitGrant(decision.headers, decision.release)


# --- steps 5 and 6: scope and model -------------------------------------------------------------------------

def check_scope(key: KeyContext, endpoint: str, method: str) -> None:
    """Step 5: 403 scope_not_allowed when the key's scope does not cover this endpoint.
    endpoint is one of: chat, completions, embeddings, messages, responses, models."""
    if not scope_allows(key.scope, endpoint, method):
        raise PolicyDenied(403, "permission_error", "scope_not_allowed",
                           f"This API key (scope '{key.scope}') may not call this endpoint.")


def check_model(key: KeyContext, model: ModelEntry) -> None:
    """Step 6: 403 model_not_allowed when the key has a model allow list without this model."""
    if key.allowed_models and model.public_id not in key.allowed_models:
        raise PolicyDenied(403, "permission_error", "model_not_allowed",
                           f"This API key may not use the model '{model.public_id}'.")


def visible_models(key: KeyContext, models: list[ModelEntry]) -> list[ModelEntry]:
    """/v1/models lists only the models this key may use."""
    if not key.allowed_models:
        return models
    return [model for model in models if model.public_id in key.allowed_models]


# --- step 7: credits ----------------------------------------------------------------------------------------

_EXHAUSTED = {
    "key": "This API key has used up its credit quota.",
    "key_monthly": "This API key has used up its credit quota for this month; it renews on the 1st (UTC).",
    "org": "The organisation's monthly credit allowance is used up; it renews on the 1st (UTC).",
}
_TOO_LITTLE = {
    "key": "The credits left on this API key do not pay for this request",
    "org": "The credits left in the organisation's monthly allowance do not pay for this request",
}
_SMALLEST = (": its prompt and at least one output token per choice. Send a shorter prompt or fewer choices "
             "(n), or ask for more credits.")


def reserve_budget(key: KeyContext, model: ModelEntry, prompt_tokens_estimate: int,
                   max_output_tokens: int | None, share_commit: bool = False, choices: int = 1) -> Reservation:
    """Step 7: reserve the worst case (402 insufficient_quota when the key quota or the organisation
    allowance cannot cover even the smallest request). The worst case is the prompt estimate plus
    max_output_tokens (the model's max_output_tokens when None) for each of `choices` at the model's prices;
    with a small remainder the cap shrinks to what remains (see budget.py). No database write when neither
    the key nor the organisation is limited. When a budget applies, Reservation.output_cap is the cap per
    choice that was reserved for: the gateway must send it upstream, or the answer could cost more than
    was reserved.
    share_commit (other requests are under way): on SQLite, wait one turn of the event loop so that the
    reservations made meanwhile share one commit; alone, a request commits at once."""
    allowance = settings.org_allowance_micro()
    if key.quota_micro is None and allowance is None:
        return Reservation(key.id)
    wanted = model.max_output_tokens if max_output_tokens is None else max_output_tokens
    worst = budget.WorstCase.of(prompt_tokens_estimate, choices, model.input_price, model.output_price)
    period = ratelimits.month_of(time.time())[0]

    def reserve(conn) -> tuple[int, int, int]:
        cap, key_reserved, org_reserved = wanted, 0, 0
        if key.quota_micro is not None:
            cap, key_reserved = budget.reserve_key(conn, key, worst, cap, period)
        if allowance is not None:
            cap, org_reserved = budget.reserve_org(conn, allowance, worst, cap, period)
            if key_reserved > org_reserved:  # the allowance shrank the cap: the key keeps the same amount
                budget.release_key(conn, key.id, key_reserved - org_reserved)
                key_reserved = org_reserved
        return cap, key_reserved, org_reserved

    try:
        group = GroupWriter.for_engine(db.engine, "reserve", next_turn) if share_commit else None
        if group is None:
            with RawTransaction(db.engine) as conn:
                cap, key_reserved, org_reserved = reserve(conn)
        else:  # requests reserving in the same turn of the loop share one commit
            cap, key_reserved, org_reserved = group.run(reserve)
    except budget.BudgetExhausted as exc:
        which = "key_monthly" if exc.which == "key" and key.quota_monthly else exc.which
        message = _TOO_LITTLE[exc.which] + _SMALLEST if exc.remaining > 0 else _EXHAUSTED[which]
        raise PolicyDenied(402, "insufficient_quota", "insufficient_quota", message,
                           headers={"x-should-retry": "false"}) from None
    return Reservation(key.id, key_reserved, org_reserved, period if allowance is not None else None, cap)


# --- for the admin side (keys and settings) -----------------------------------------------------------

def normalise_ip_list(entries) -> list[str]:
    """Validate and canonicalise an IP allow list (list or text); raises INVALID_IP_ENTRY (a ValueError
    whose .entry is the bad item)."""
    return ip_allow.normalise(entries)


def org_usage() -> tuple[int, int, str]:
    """(used, reserved, 'YYYY-MM') of the organisation counter for this month."""
    period = budget.period_of()
    with db.engine.connect() as conn:
        used, reserved = budget.org_status(conn, period)
    return used, reserved, period


def recount_org_usage(conn) -> int:
    """Recount this month's organisation usage from the request log (inside the caller's transaction)."""
    return budget.recount_org(conn, budget.period_of())


def update_org_settings(allowance: str, per_ip_count: str, per_ip_unit: str) -> settings.OrgSettings:
    """Store the owner's allowance and per-IP limit (app.settings.update raises SettingsError on bad input).
    An allowance set after a time without one recounts this month's counter in the same transaction."""
    return settings.update(allowance, per_ip_count, per_ip_unit, on_allowance_set=recount_org_usage)
