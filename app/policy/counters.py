"""Where the rate-limit counters and concurrency slots live: this process's memory, Redis (one atomic Lua
call per request), or any other `limits` storage. Each backend checks a request's windows and takes a
slot all or nothing: the request is counted only when every window (and the cap) has room."""
from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass

from limits.storage import RedisClusterStorage, RedisStorage, Storage, storage_from_string

from app.policy.windows import Window, expiry


@dataclass(frozen=True)
class Outcome:
    """What the storage said. counts[i] belongs to windows[i]: after this request when allowed, before it
    when refused. refused is the index of the full window, len(windows) for the concurrency cap."""

    allowed: bool
    counts: tuple[int, ...]
    refused: int | None = None
    token: str | None = None


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
