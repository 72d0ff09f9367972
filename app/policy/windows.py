"""The fixed windows one request is counted in: per client IP, and per key and minute, hour and month.

Windows are aligned to the clock (UTC): a minute from :00, an hour from the full hour, a month from the
1st; the per-IP limit ("60/minute", "600/10 minutes", several separated by ';') likewise, aligned to
multiples of its length since the epoch. The reset time is therefore known without asking the storage.
"""
from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from limits import RateLimitItem, parse_many


@dataclass(frozen=True)
class Window:
    """One fixed window a request is counted in."""

    kind: str  # ip | minute | hour | month
    limit: int
    counter: str  # storage key
    seconds: int  # length of the window
    reset: int  # epoch seconds at which it ends


@lru_cache(maxsize=64)
def parse_ip_limits(spec: str) -> tuple[RateLimitItem, ...]:
    """'60/minute' or '10/second;500/hour' → limits items. An empty spec means no per-IP limit."""
    return tuple(parse_many(spec)) if spec and spec.strip() else ()


def validate_ip_limit(spec: str) -> str:
    """The spec unchanged if `limits` can parse it (raises ValueError otherwise)."""
    parse_many(spec)
    return spec


def _month_bounds(now: float) -> tuple[str, int, int]:
    day = datetime.fromtimestamp(now, UTC)
    start = calendar.timegm((day.year, day.month, 1, 0, 0, 0))
    end = calendar.timegm((day.year + day.month // 12, day.month % 12 + 1, 1, 0, 0, 0))
    return f"{day.year:04d}-{day.month:02d}", start, end


_last_month: tuple[str, int, int] = ("", 0, 0)


def month_of(now: float) -> tuple[str, int, int]:
    """('YYYY-MM', start, end) of the UTC month of `now`; the last answer is reused while it holds."""
    global _last_month
    if not (_last_month[1] <= now < _last_month[2]):
        _last_month = _month_bounds(now)
    return _last_month


def expiry(window: Window, now: float) -> int:
    """Seconds the window's counter must live in the storage."""
    return max(1, math.ceil(window.reset - now)) + 1


def _aligned(prefix: str, kind: str, limit: int, seconds: int, now: float) -> Window:
    start = int(now // seconds) * seconds
    return Window(kind, limit, f"{prefix}:{start}", seconds, start + seconds)


def ip_windows(namespace: str, client_ip: str, ip_items: tuple[RateLimitItem, ...], now: float) -> list[Window]:
    """The per-IP windows of one request, one for each item of the per-IP limit."""
    return [_aligned(f"{namespace}:ip:{item.get_expiry()}:{client_ip}", "ip", item.amount, item.get_expiry(), now)
            for item in ip_items]


_key_windows: dict[tuple, list[Window]] = {}


def key_windows(namespace: str, key, now: float) -> list[Window]:
    """The key's windows of one request: its minute, hour and month limits. Hours and months begin on a
    minute too, so the same list serves a key for a whole minute (callers must not change it)."""
    cache_key = (namespace, key.id, key.rpm, key.rph, key.monthly_requests, int(now // 60))
    windows = _key_windows.get(cache_key)
    if windows is None:
        if len(_key_windows) > 10000:
            _key_windows.clear()
        windows = _key_windows[cache_key] = _make_key_windows(namespace, key, now)
    return windows


def _make_key_windows(namespace: str, key, now: float) -> list[Window]:
    windows: list[Window] = []
    if key.rpm is not None:
        windows.append(_aligned(f"{namespace}:k{key.id}:m", "minute", key.rpm, 60, now))
    if key.rph is not None:
        windows.append(_aligned(f"{namespace}:k{key.id}:h", "hour", key.rph, 3600, now))
    if key.monthly_requests is not None:
        label, start, end = month_of(now)
        windows.append(Window("month", key.monthly_requests, f"{namespace}:k{key.id}:mo:{label}",
                              end - start, end))
    return windows
