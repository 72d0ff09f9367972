"""Helpers for the policy tests: key snapshots and the Redis storage URI."""
from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest
from support.database import DEFAULT_REDIS_URL, redis_url

from app.keys.context import KeyContext

BASE_KEY = KeyContext(
    id=1, public_id="key_test", name="test", prefix="sk-pf-Test", scope="full", expires_at=None,
    allowed_models=frozenset(), allowed_cidrs=(), quota_micro=None, quota_monthly=False, quota_period=None,
    used_micro=0, reserved_micro=0, rpm=None, rph=None, monthly_requests=None, max_concurrent=None,
)


@pytest.fixture
def make_key():
    """make_key(**changes) → a KeyContext snapshot without restrictions except the given ones."""

    def make(**changes) -> KeyContext:
        return replace(BASE_KEY, **changes)

    return make


@pytest.fixture
def redis_uri() -> str:
    """The Redis URI for storage tests; skips when Redis is unreachable unless PFORTE_REQUIRE_REDIS=1."""
    return redis_url()


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test, so that tests sharing a Redis database never see each other; its
    Redis keys are deleted afterwards."""
    name = f"pftest:{uuid.uuid4().hex[:10]}"
    yield name
    try:
        import redis

        client = redis.Redis.from_url(redis_url_if_any(), socket_connect_timeout=1)
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001 - no Redis, nothing to clean
        pass


def redis_url_if_any() -> str:
    url = os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI") or DEFAULT_REDIS_URL
    return url if url.startswith("redis") else DEFAULT_REDIS_URL


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def storage_uri(request) -> str:
    """Each rate-limit test runs against memory:// and against the real Redis."""
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_uri")


class Clock:
    """An injectable clock for window tests: set or advance `now` instead of sleeping."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    # 10 s into a minute (and into an hour and a UTC month): 2026-03-01 00:00:10.
    return Clock(1772323210.0)
