"""Rate limits and the concurrency cap against the real limits storages (memory:// and Redis), with an
injected clock for window boundaries; header values computed from the clock, not copied from the code."""
from __future__ import annotations

import threading

import pytest

from app.policy import ratelimits
from app.policy.limit_headers import duration_text
from app.policy.ratelimits import RequestLimiter

MINUTE_START = 1772323200  # 2026-03-01 00:00:00 UTC: a minute, an hour and a month begin here
APRIL_FIRST = 1775001600  # 2026-04-01 00:00:00 UTC


def limiter(uri, namespace, clock, ip_spec="", slot_ttl=900):
    return RequestLimiter(uri, namespace, lambda: ip_spec, slot_ttl, clock)


def hits(active, key, n, ip="198.51.100.1"):
    return [active.check(key, ip) for _ in range(n)]


def test_sixtieth_request_passes_and_sixty_first_is_refused(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(rpm=60)
    answers = hits(active, key, 60)
    assert all(a.allowed for a in answers)
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[-2:]] == ["1", "0"]
    refused = active.check(key, "198.51.100.1")
    assert not refused.allowed
    assert refused.refused_kind == "minute" and refused.refused_limit == 60
    # 10 s into the minute: the window ends in 50 s.
    assert refused.retry_after == 50
    assert refused.headers["retry-after"] == "50"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == str(MINUTE_START + 60)


def test_window_rolls_over_at_the_full_minute(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(rpm=3)
    assert all(a.allowed for a in hits(active, key, 3))
    clock.now = MINUTE_START + 59.999
    last = active.check(key, "198.51.100.1")
    assert not last.allowed and last.retry_after == 1
    clock.now = MINUTE_START + 60
    fresh = active.check(key, "198.51.100.1")
    assert fresh.allowed
    assert fresh.headers["X-RateLimit-Remaining"] == "2"
    assert fresh.headers["X-RateLimit-Reset"] == str(MINUTE_START + 120)


def test_refused_requests_use_up_nothing(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(rpm=2, rph=100, monthly_requests=1000)
    assert all(a.allowed for a in hits(active, key, 2))
    assert not any(a.allowed for a in hits(active, key, 5))
    clock.now = MINUTE_START + 60
    answer = active.check(key, "198.51.100.1")
    # Only the three admitted requests count against the hour and the month (tightest shown: the minute).
    assert answer.headers["X-RateLimit-Limit"] == "2"
    key_hour_only = make_key(rph=100)
    assert active.check(key_hour_only, "198.51.100.1").headers["X-RateLimit-Remaining"] == str(100 - 4)


def test_per_ip_limit_counts_each_address_separately(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock, ip_spec="60/minute")
    first, second = make_key(id=1), make_key(id=2)
    # Keys do not matter for the per-IP limit: two keys from one address share it.
    assert all(a.allowed for a in hits(active, first, 30) + hits(active, second, 30))
    refused = active.check(first, "198.51.100.1")
    assert not refused.allowed and refused.refused_kind == "ip"
    assert refused.headers["X-RateLimit-Window"] == "60"
    assert active.check(first, "198.51.100.2").allowed
    assert active.check(first, "2001:db8::1").allowed


def test_per_ip_limit_with_several_windows(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock, ip_spec="3/second;5/minute")
    key = make_key()
    assert all(a.allowed for a in hits(active, key, 3))
    refused = active.check(key, "198.51.100.1")
    assert not refused.allowed and refused.headers["X-RateLimit-Window"] == "1"
    clock.now += 1
    assert all(a.allowed for a in hits(active, key, 2))
    refused = active.check(key, "198.51.100.1")
    assert refused.headers["X-RateLimit-Window"] == "60" and refused.retry_after == 49


def test_headers_describe_the_tightest_limit(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock, ip_spec="60/minute")
    key = make_key(rpm=100, rph=5, monthly_requests=100000)
    answer = active.check(key, "198.51.100.1")
    assert answer.headers == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": str(MINUTE_START + 3600),
        "X-RateLimit-Window": "3600",
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "59m50s",
    }


def test_monthly_limit_warns_from_80_percent_and_resets_next_month(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(monthly_requests=10)
    answers = hits(active, key, 10)
    warnings = [a.headers.get("X-RateLimit-Warning") for a in answers]
    assert warnings == [None] * 7 + ["approaching-limit"] * 3
    assert answers[0].headers["X-RateLimit-Reset"] == str(APRIL_FIRST)
    assert answers[0].headers["X-RateLimit-Window"] == str(APRIL_FIRST - MINUTE_START)
    refused = active.check(key, "198.51.100.1")
    assert not refused.allowed and refused.refused_kind == "month"
    assert refused.retry_after == 60  # never above 60 s, however long the window lasts
    clock.now = APRIL_FIRST
    fresh = active.check(key, "198.51.100.1")
    assert fresh.allowed and fresh.headers["X-RateLimit-Remaining"] == "9"
    assert "X-RateLimit-Warning" not in fresh.headers


def test_quota_warning_is_added_even_without_rate_limits(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    assert active.check(make_key(), "198.51.100.1", quota_warning=True).headers == {
        "X-RateLimit-Warning": "approaching-limit"}
    assert active.check(make_key(), "198.51.100.1").headers == {}


def test_concurrency_cap_and_release(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(max_concurrent=2)
    first, second = hits(active, key, 2)
    assert first.allowed and second.allowed and first.release is not None
    refused = active.check(key, "198.51.100.1")
    assert not refused.allowed and refused.refused_kind == "concurrency" and refused.retry_after == 1
    first.release()
    third = active.check(key, "198.51.100.1")
    assert third.allowed
    assert not active.check(key, "198.51.100.1").allowed
    # Another key has its own slots.
    assert active.check(make_key(id=2, max_concurrent=1), "198.51.100.1").allowed


def test_slots_of_a_crashed_process_expire(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock, slot_ttl=30)
    key = make_key(max_concurrent=1)
    assert active.check(key, "198.51.100.1").allowed  # never released, as if the process had died
    assert not active.check(key, "198.51.100.1").allowed
    clock.now += 30
    assert active.check(key, "198.51.100.1").allowed


def test_a_refused_rate_limit_holds_no_slot(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(rpm=1, max_concurrent=1)
    held = active.check(key, "198.51.100.1")
    held.release()
    assert not active.check(key, "198.51.100.1").allowed  # minute full
    clock.now += 60
    assert active.check(key, "198.51.100.1").allowed  # the refused request took no slot


def test_exactly_the_limit_passes_when_many_threads_race(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(rpm=50, rph=1000, max_concurrent=1000)
    results: list[bool] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            answer = active.check(key, "198.51.100.1")
            with lock:
                results.append(answer.allowed)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 100 and results.count(True) == 50


def test_the_concurrency_cap_holds_when_many_threads_race(storage_uri, namespace, clock, make_key):
    active = limiter(storage_uri, namespace, clock)
    key = make_key(max_concurrent=7)
    barrier = threading.Barrier(40)
    granted = []

    def worker():
        barrier.wait()
        answer = active.check(key, "198.51.100.1")
        if answer.allowed:
            granted.append(answer)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 7
    for answer in granted:
        answer.release()
    assert active.check(key, "198.51.100.1").allowed


def test_storage_failure_lets_requests_through(namespace, clock, make_key):
    active = limiter("redis://127.0.0.1:1/0", namespace, clock, ip_spec="1/minute")
    key = make_key(rpm=1)
    assert all(a.allowed for a in hits(active, key, 3))


@pytest.mark.redis
def test_redis_counters_are_shared_by_several_limiters(redis_uri, namespace, clock, make_key):
    """Two processes (here: two limiters with their own connections) share one Redis budget."""
    one, two = limiter(redis_uri, namespace, clock), limiter(redis_uri, namespace, clock)
    key = make_key(rpm=4, max_concurrent=3)
    answers = [one.check(key, "198.51.100.1"), two.check(key, "198.51.100.1"), one.check(key, "198.51.100.1")]
    assert all(a.allowed for a in answers)
    assert not two.check(key, "198.51.100.1").allowed  # concurrency 3 of 3
    answers[0].release()
    assert two.check(key, "198.51.100.1").allowed
    assert not one.check(key, "198.51.100.1").allowed  # minute 4 of 4


@pytest.mark.parametrize("seconds,text", [(0.2, "1s"), (1, "1s"), (59.5, "1m0s"), (60, "1m0s"), (61, "1m1s"),
                                          (3599, "59m59s"), (3600, "1h0m0s"), (90061, "25h1m1s")])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


def test_month_bounds_cross_the_year():
    label, start, end = ratelimits.month_of(1798761599.0)  # 2026-12-31 23:59:59 UTC
    assert (label, start, end) == ("2026-12", 1796083200, 1798761600)
    assert ratelimits.month_of(1798761600.0)[0] == "2027-01"


def test_ip_limit_spec_validation():
    assert ratelimits.parse_ip_limits("60/minute")[0].amount == 60
    assert ratelimits.parse_ip_limits("") == ()
    with pytest.raises(ValueError):
        ratelimits.parse_ip_limits("sixty a minute")
