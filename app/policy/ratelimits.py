"""Request-rate limits (per client IP; per key and minute, hour, month) and the per-key concurrency cap.

Counters live where PFORTE_RATELIMIT_STORAGE_URI says: memory:// (dicts of this process) or a `limits`
storage such as redis://… (shared by several processes; one Lua call per request, one more to free a
concurrency slot).

- Windows are fixed and aligned to the clock (UTC), see app.policy.windows; the headers that describe them
  are made in app.policy.limit_headers.
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

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.client_ip import rate_limit_subject
from app.policy.counters import Outcome, counters_for
from app.policy.limit_headers import WARNING_HEADER, WARNING_VALUE, rate_headers, retry_after
from app.policy.windows import Window, ip_windows, key_windows, month_of, parse_ip_limits, validate_ip_limit

__all__ = ["DEFAULT_SLOT_SECONDS", "Decision", "RequestLimiter", "month_of", "parse_ip_limits",
           "validate_ip_limit"]

log = logging.getLogger(__name__)

DEFAULT_SLOT_SECONDS = 900


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
        """Count the request in the per-IP windows (any request: the key is not known yet). An IPv6 client
        counts by its /64, an IPv4-mapped one by its IPv4 address."""
        now = self.clock()
        windows = ip_windows(self.namespace, rate_limit_subject(client_ip), parse_ip_limits(self.ip_spec()), now)
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
