"""Login throttling: failed attempts are counted per client IP and per user name in the rate-limit storage
(memory, or Redis shared by several processes). Once a counter is full, every attempt is refused until its
window ends, whether the password is right or not."""
from __future__ import annotations

import hashlib
import math
import time

from flask import current_app
from limits import RateLimitItem, parse_many

from app.extensions import limiter

NAMESPACE = "login-failures"


def _limits() -> list[RateLimitItem]:
    return parse_many(current_app.config["PFORTE_LOGIN_ATTEMPTS"])


def _user_key(username: str) -> str:
    return hashlib.sha256((username or "").strip().lower().encode()).hexdigest()


def _counters(ip: str | None, username: str | None) -> list[tuple[str, str]]:
    counters = [("ip", ip or "unknown")]
    if username is not None:
        counters.append(("user", _user_key(username)))
    return counters


def seconds_blocked(ip: str | None, username: str | None) -> int:
    """0 when another attempt is allowed, else the seconds until every full counter has reset."""
    strategy = limiter.limiter
    wait = 0.0
    for item in _limits():
        for kind, value in _counters(ip, username):
            if not strategy.test(item, NAMESPACE, kind, value):
                reset_at = strategy.get_window_stats(item, NAMESPACE, kind, value).reset_time
                wait = max(wait, reset_at - time.time(), 1.0)
    return math.ceil(wait)


def count_failure(ip: str | None, username: str | None) -> None:
    """Count one failed attempt from this IP (and against this user name, when one was given)."""
    strategy = limiter.limiter
    for item in _limits():
        for kind, value in _counters(ip, username):
            strategy.hit(item, NAMESPACE, kind, value)


def forget_user(username: str) -> None:
    """A successful login clears the user name's counter (the IP's counter keeps running)."""
    strategy = limiter.limiter
    for item in _limits():
        strategy.clear(item, NAMESPACE, "user", _user_key(username))
