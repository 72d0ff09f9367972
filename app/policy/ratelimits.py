"""Request-rate limits (per client IP; per key and minute, hour, month) and the per-key concurrency cap.

Counters live where PFORTE_RATELIMIT_STORAGE_URI says: memory:// (dicts of this process) or a `limits`
storage such as redis://… (shared by several processes; one Lua call per request, one more to free a
concurrency slot).

- Windows are fixed and aligned to the clock (UTC): a minute from :00, an hour from the full hour, a month
  from the 1st; the per-IP limit ("60/minute", "600/10 minutes", several separated by ';') likewise, aligned
  to multiples of its length since the epoch. The reset time is therefore known without asking the storage.
- Two steps. The per-IP windows are counted first, before the key is known (count_ip): every API call
  counts, also one with a missing, unknown or invalid key, so that guessing keys is rate limited too. The
  key's windows and its concurrency cap follow once the key is known (check). Within each step it is all or
  nothing: a request is counted in the step's windows only when all of them (and the cap) have room, so a
  request refused by a key limit uses up nothing of the key's limits, but it has used one per-IP request.
- A concurrency slot is freed by release(); slots also expire after PFORTE_CONCURRENCY_SLOT_SECONDS
  (default 900) so that a crashed process cannot hold them for ever. A request that runs longer than that
  no longer counts against the cap.
- If the storage fails (Redis down), requests are let through without rate limits and the error is logged:
  credit quotas are still enforced by the database.
"""
from __future__ import annotations

import calendar
import itertools
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.storage import RedisClusterStorage, RedisStorage, Storage, storage_from_string

log = logging.getLogger(__name__)

WARNING_HEADER = "X-RateLimit-Warning"
WARNING_VALUE = "approaching-limit"
MAX_RETRY_AFTER = 60
DEFAULT_SLOT_SECONDS = 900


@dataclass(frozen=True)
class Window:
    """One fixed window a request is counted in."""

    kind: str  # ip | minute | hour | month
    limit: int
    counter: str  # storage key
    seconds: int  # length of the window
    reset: int  # epoch seconds at which it ends


@dataclass(frozen=True)
class Outcome:
    """What the storage said. counts[i] belongs to windows[i]: after this request when allowed, before it
    when refused. refused is the index of the full window, len(windows) for the concurrency cap."""

    allowed: bool
    counts: tuple[int, ...]
    refused: int | None = None
    token: str | None = None


# --- the windows of one request ----------------------------------------------------------------------

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


# --- headers -----------------------------------------------------------------------------------------

def duration_text(seconds: float) -> str:
    """OpenAI-style duration of x-ratelimit-reset-requests: '7s', '1m0s', '2h5m0s' (whole seconds, ≥ 1)."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def retry_after(window: Window | None, now: float) -> int:
    """Whole seconds until the window ends, at least 1 and never above 60 (1 for the concurrency cap)."""
    if window is None:
        return 1
    return max(1, min(MAX_RETRY_AFTER, math.ceil(window.reset - now)))


def tightest(windows: list[Window], counts: tuple[int, ...]) -> int | None:
    """Index of the window with the fewest requests left; on a tie the one that resets last."""
    best = None
    for i, window in enumerate(windows):
        rank = (window.limit - counts[i], -window.reset)
        if best is None or rank < best[0]:
            best = (rank, i)
    return None if best is None else best[1]


def near_limit(used: int, limit: int) -> bool:
    """True from 80 % of the limit on."""
    return used * 5 >= limit * 4


def rate_headers(windows: list[Window], counts: tuple[int, ...], now: float, quota_warning: bool = False,
                 focus: int | None = None) -> dict[str, str]:
    """X-RateLimit-* and x-ratelimit-*-requests for the window `focus` (default: the tightest one), plus
    X-RateLimit-Warning from 80 % of a monthly request limit or (quota_warning) of a credit quota."""
    headers: dict[str, str] = {}
    index = focus if focus is not None and focus < len(windows) else tightest(windows, counts)
    if index is not None:
        window = windows[index]
        limit = str(window.limit)
        remaining = str(max(0, window.limit - counts[index]))
        headers = {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": str(window.reset),
            "X-RateLimit-Window": str(window.seconds),
            "x-ratelimit-limit-requests": limit,
            "x-ratelimit-remaining-requests": remaining,
            "x-ratelimit-reset-requests": duration_text(window.reset - now),
        }
    monthly = any(w.kind == "month" and near_limit(counts[i], w.limit) for i, w in enumerate(windows))
    if quota_warning or monthly:
        headers[WARNING_HEADER] = WARNING_VALUE
    return headers


# --- counter storages --------------------------------------------------------------------------------

class MemoryCounters:
    """memory://: counters and slots in plain dicts of this process (the limits MemoryStorage starts a timer
    thread for its expiry sweeps, which costs more than the whole check). Counter keys name their window,
    so an old window is garbage; it is swept out every SWEEP_SECONDS. A lock makes check-and-count atomic
    for threads; under gevent nothing in here yields anyway."""

    SWEEP_SECONDS = 10.0

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.ends: dict[str, int] = {}
        self.slots: dict[str, dict[int, float]] = {}
        self.tokens = itertools.count(1)
        self.next_sweep = 0.0

    def acquire(self, windows: list[Window], slot_key: str | None, max_slots: int, slot_ttl: int,
                now: float) -> Outcome:
        counts_of = self.counts
        with self.lock:
            if now >= self.next_sweep:
                self._sweep(now)
            counts = tuple(counts_of.get(w.counter, 0) for w in windows)
            for i, window in enumerate(windows):
                if counts[i] >= window.limit:
                    return Outcome(False, counts, i)
            token = None
            if slot_key is not None:
                held = self.slots.setdefault(slot_key, {})
                if len(held) >= max_slots:
                    for old in [t for t, expires in held.items() if expires <= now]:
                        del held[old]
                    if len(held) >= max_slots:
                        return Outcome(False, counts, len(windows))
                token = next(self.tokens)
                held[token] = now + slot_ttl
            for window, count in zip(windows, counts, strict=True):
                if not count:
                    self.ends[window.counter] = window.reset
                counts_of[window.counter] = count + 1
        return Outcome(True, tuple(count + 1 for count in counts), None, token)

    def _sweep(self, now: float) -> None:
        for counter in [c for c, end in self.ends.items() if end <= now]:
            del self.ends[counter]
            self.counts.pop(counter, None)
        self.next_sweep = now + self.SWEEP_SECONDS

    def release(self, slot_key: str, token) -> None:
        with self.lock:
            held = self.slots.get(slot_key)
            if held is not None:
                held.pop(token, None)
                if not held:
                    del self.slots[slot_key]


ACQUIRE_LUA = """
local n = tonumber(ARGV[1])
local counts = {}
local refused = 0
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = c
  if refused == 0 and c >= tonumber(ARGV[1 + i]) then refused = i end
end
local has_slot = #KEYS > n
local now = tonumber(ARGV[2 + 2 * n])
if refused == 0 and has_slot then
  redis.call('ZREMRANGEBYSCORE', KEYS[n + 1], '-inf', now)
  if redis.call('ZCARD', KEYS[n + 1]) >= tonumber(ARGV[4 + 2 * n]) then refused = n + 1 end
end
if refused ~= 0 then
  return {refused, unpack(counts)}
end
for i = 1, n do
  counts[i] = redis.call('INCR', KEYS[i])
  if counts[i] == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1 + n + i]) end
end
if has_slot then
  local ttl = tonumber(ARGV[3 + 2 * n])
  redis.call('ZADD', KEYS[n + 1], now + ttl, ARGV[5 + 2 * n])
  redis.call('EXPIRE', KEYS[n + 1], ttl)
end
return {0, unpack(counts)}
"""


class RedisCounters:
    """Counters and slots in Redis: one atomic Lua call per request; a slot is a member of a sorted set
    scored with its expiry time, so slots of a crashed process expire on their own."""

    def __init__(self, storage: RedisStorage):
        self.storage = storage
        self.client = storage.get_connection()
        self.script = self.client.register_script(ACQUIRE_LUA)

    def acquire(self, windows: list[Window], slot_key: str | None, max_slots: int, slot_ttl: int,
                now: float) -> Outcome:
        keys = [self.storage.prefixed_key(w.counter) for w in windows]
        args: list = [len(windows), *(w.limit for w in windows),
                      *(expiry(w, now) for w in windows), repr(now), slot_ttl, max_slots]
        token = None
        if slot_key is not None:
            keys.append(self.storage.prefixed_key(slot_key))
            token = secrets.token_hex(8)
            args.append(token)
        reply = self.script(keys=keys, args=args)
        refused = int(reply[0])
        counts = tuple(int(c) for c in reply[1:])
        if refused:
            return Outcome(False, counts, refused - 1)
        return Outcome(True, counts, None, token)

    def release(self, slot_key: str, token: str) -> None:
        self.client.zrem(self.storage.prefixed_key(slot_key), token)


class GenericCounters:
    """Any other limits storage (memcached, MongoDB, Redis cluster): count, then take the count back if a
    window turns out full. Not atomic across processes; the concurrency cap is a plain counter."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def acquire(self, windows: list[Window], slot_key: str | None, max_slots: int, slot_ttl: int,
                now: float) -> Outcome:
        storage = self.storage
        counted: list[int] = []
        refused = None
        for i, window in enumerate(windows):
            counted.append(storage.incr(window.counter, expiry(window, now)))
            if counted[-1] > window.limit:
                refused = i
                break
        if refused is None and slot_key is not None:
            if storage.incr(slot_key, slot_ttl) > max_slots:
                storage.incr(slot_key, slot_ttl, -1)
                refused = len(windows)
        if refused is not None:
            for window in windows[: len(counted)]:
                storage.incr(window.counter, 1, -1)
            counts = tuple(c - 1 for c in counted) + (0,) * (len(windows) - len(counted))
            return Outcome(False, counts, refused)
        return Outcome(True, tuple(counted), None, "slot" if slot_key is not None else None)

    def release(self, slot_key: str, _token: str) -> None:
        self.storage.incr(slot_key, 1, -1)


def counters_for(uri: str):
    """The counter backend for a storage URI."""
    if uri.startswith("memory://"):
        return MemoryCounters()
    storage = storage_from_string(uri)
    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return RedisCounters(storage)
    return GenericCounters(storage)


# --- the limiter ---------------------------------------------------------------------------------------

@dataclass
class Decision:
    """The answer for one request: allowed (with a release callable when a slot is held) or refused."""

    allowed: bool
    headers: dict[str, str]
    release: Callable[[], None] | None = None
    retry_after: int = 0
    refused_kind: str | None = None  # ip | minute | hour | month | concurrency
    refused_limit: int = 0
    windows: tuple[Window, ...] = ()  # count_ip: the per-IP windows and their counts, for the headers
    counts: tuple[int, ...] = ()
    now: float = 0.0

    def ip_headers(self) -> dict[str, str]:
        """count_ip's headers when it allowed the request (made only if no later step replaces them)."""
        return rate_headers(list(self.windows), self.counts, self.now) if self.windows else self.headers


class RequestLimiter:
    """Per-app rate limiter. `ip_spec` returns the current per-IP limit; `clock` is injectable for tests.

    count_ip() runs before authentication, check() once the key is known (with count_ip's decision, whose
    windows the response headers take into account)."""

    def __init__(self, storage_uri: str, namespace: str, ip_spec: Callable[[], str],
                 slot_ttl: int = DEFAULT_SLOT_SECONDS, clock: Callable[[], float] = time.time):
        self.counters = counters_for(storage_uri)
        self.namespace = namespace
        self.ip_spec = ip_spec
        self.slot_ttl = int(slot_ttl)
        self.clock = clock

    def count_ip(self, client_ip: str) -> Decision:
        """Count the request in the per-IP windows (any request: the key is not known yet)."""
        now = self.clock()
        windows = ip_windows(self.namespace, client_ip, parse_ip_limits(self.ip_spec()), now)
        if not windows:
            return Decision(True, {})
        outcome = self._acquire(windows, None, 0, now)
        if outcome is None:
            return Decision(True, {})
        if not outcome.allowed:
            return self._refused(windows, outcome.counts, outcome.refused, now, False, 0)
        return Decision(True, {}, windows=tuple(windows), counts=outcome.counts, now=now)

    def check(self, key, client_ip: str, quota_warning: bool = False, ip: Decision | None = None) -> Decision:
        """Count the request in the key's windows and take a concurrency slot. `ip` is count_ip's decision for
        this request; without it, the request is counted in the per-IP windows first."""
        if ip is None:
            ip = self.count_ip(client_ip)
        if not ip.allowed:
            if quota_warning:
                ip.headers[WARNING_HEADER] = WARNING_VALUE
            return ip
        now = self.clock()
        windows = key_windows(self.namespace, key, now)
        slot_key = f"{self.namespace}:k{key.id}:slots" if key.max_concurrent is not None else None
        outcome = None
        if windows or slot_key is not None:
            outcome = self._acquire(windows, slot_key, key.max_concurrent or 0, now)
        if outcome is None:  # nothing to count for the key, or the storage is down
            return Decision(True, rate_headers(list(ip.windows), ip.counts, now, quota_warning))
        all_windows, counts = [*ip.windows, *windows], ip.counts + outcome.counts
        if not outcome.allowed:
            return self._refused(all_windows, counts, len(ip.windows) + outcome.refused, now, quota_warning,
                                 key.max_concurrent or 0)
        release = self._releaser(slot_key, outcome.token) if outcome.token is not None else None
        return Decision(True, rate_headers(all_windows, counts, now, quota_warning), release)

    def _acquire(self, windows: list[Window], slot_key: str | None, max_slots: int, now: float) -> Outcome | None:
        """The storage's outcome; None when the storage fails (see the module docstring)."""
        try:
            return self.counters.acquire(windows, slot_key, max_slots, self.slot_ttl, now)
        except Exception:
            log.exception("rate-limit storage failed; request not rate limited")
            return None

    @staticmethod
    def _refused(windows: list[Window], counts: tuple[int, ...], refused: int, now: float, quota_warning: bool,
                 max_concurrent: int) -> Decision:
        """A refusal by windows[refused], or by the concurrency cap when refused == len(windows)."""
        full = windows[refused] if refused < len(windows) else None
        headers = rate_headers(windows, counts, now, quota_warning, focus=refused)
        wait = retry_after(full, now)
        headers["retry-after"] = str(wait)
        if full is None:
            return Decision(False, headers, None, wait, "concurrency", max_concurrent)
        return Decision(False, headers, None, wait, full.kind, full.limit)

    def _releaser(self, slot_key: str, token: str) -> Callable[[], None]:
        def release() -> None:
            try:
                self.counters.release(slot_key, token)
            except Exception:
                log.exception("could not free a concurrency slot; it expires after %s s", self.slot_ttl)

        return release
