"""The two-minute soak in CI (tests/support/soak.py; `scripts/soak --minutes 10` is the long one): mixed load
on small quotas against one process, then the bookkeeping invariants, no held slot, and a flat RSS."""
from __future__ import annotations

import os

import pytest
from support.proof import proof_gateway
from support.soak import Soak

SECONDS = float(os.environ.get("PFORTE_SOAK_SECONDS", "120"))
WARMUP_SECONDS = SECONDS / 4
RSS_GROWTH_LIMIT_KIB = 16 * 1024  # after warm-up; a leak of a few hundred bytes per request is far above it


@pytest.mark.slow
@pytest.mark.timeout(int(SECONDS) + 240)
def test_two_minutes_of_mixed_load_keep_every_invariant(tmp_path):
    with proof_gateway(tmp_path / "instance") as gateway:
        result = Soak(gateway, SECONDS, seed=14).run()
        print(result.summary(WARMUP_SECONDS))
        assert result.problems == []
        assert result.requests >= SECONDS * 5, "the load should be more than a trickle"
        assert {200, 402}.issubset(result.by_status), result.by_status  # served, and quotas used up
        assert result.keys_revoked >= SECONDS // 10
        start, end = result.rss_after_warmup(WARMUP_SECONDS)
        assert end - start <= RSS_GROWTH_LIMIT_KIB, result.summary(WARMUP_SECONDS)
