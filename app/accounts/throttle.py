"""Login throttling in the rate-limit storage (memory, or Redis shared by several processes).

Failed attempts are counted per client address, per (user name, address) pair and per user name, in the
PFORTE_LOGIN_ATTEMPTS windows. A full address or pair counter refuses every attempt from there until its
window ends, whether the password is right or not. A full user-name counter locks nobody out: it slows
every attempt for that name down (one second more per further failure, at most
PFORTE_LOGIN_MAX_DELAY_SECONDS), so that guessing from many addresses gets slow while the right password
from any address that is not blocked still works."""
from __future__ import annotations

import hashlib
import math
import time

from flask import current_app
from limits import RateLimitItem, parse_many

from app.extensions import limiter

NAMESPACE = "login-failures"
SECONDS_PER_FAILURE = 1.0


def _limits() -> list[RateLimitItem]:
    return parse_many(current_app.config["PFORTE_LOGIN_ATTEMPTS"])


def _user_key(username: str) -> str:
    return hashlib.sha256((username or "").strip().lower().encode()).hexdigest()


def _pair_key(username: str, ip: str | None) -> str:
    return hashlib.sha256(f"{_user_key(username)}|{ip or 'unknown'}".encode()).hexdigest()


def _blocking(ip: str | None, username: str | None) -> list[tuple[str, str]]:
    """The counters that refuse attempts once full: the address, and the user name from this address."""
    counters = [("ip", ip or "unknown")]
    if username is not None:
        counters.append(("user-ip", _pair_key(username, ip)))
    return counters


def seconds_blocked(ip: str | None, username: str | None) -> int:
    """0 when another attempt is allowed, else the seconds until every full counter has reset."""
    strategy = limiter.limiter
    wait = 0.0
    for item in _limits():
        for kind, value in _blocking(ip, username):
            if not strategy.test(item, NAMESPACE, kind, value):
                reset_at = strategy.get_window_stats(item, NAMESPACE, kind, value).reset_time
                wait = max(wait, reset_at - time.time(), 1.0)
    return math.ceil(wait)


def slowdown(username: str) -> float:
    """Seconds to wait before checking a password for this user name (0 while its counter is not full)."""
    strategy = limiter.limiter
    failures_over = 0
    for item in _limits():
        count = strategy.storage.get(item.key_for(NAMESPACE, "user", _user_key(username)))
        failures_over = max(failures_over, count - item.amount + 1)
    if failures_over <= 0:
        return 0.0
    return min(float(current_app.config["PFORTE_LOGIN_MAX_DELAY_SECONDS"]),
               failures_over * SECONDS_PER_FAILURE)


def count_failure(ip: str | None, username: str | None) -> None:
    """Count one failed attempt from this IP (and against this user name, when one was given)."""
    strategy = limiter.limiter
    counters = _blocking(ip, username)
    if username is not None:
        counters.append(("user", _user_key(username)))
    for item in _limits():
        for kind, value in counters:
            strategy.hit(item, NAMESPACE, kind, value)


def forget_user(username: str, ip: str | None) -> None:
    """A successful login clears the user name's counters (the address's counter keeps running)."""
    strategy = limiter.limiter
    for item in _limits():
        strategy.clear(item, NAMESPACE, "user", _user_key(username))
        strategy.clear(item, NAMESPACE, "user-ip", _pair_key(username, ip))
