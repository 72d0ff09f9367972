"""scripts/soak [--minutes N]: see tests/support/soak.py. Prints the figures; exits 1 on any problem."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.proof import proof_gateway  # noqa: E402
from support.soak import Soak  # noqa: E402

RSS_GROWTH_LIMIT_KIB = 16 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description="Mixed load on small quotas, then the invariants.")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seconds = args.minutes * 60
    warmup = seconds / 5
    with tempfile.TemporaryDirectory(prefix="pforte-soak-") as folder, proof_gateway(Path(folder)) as gateway:
        result = Soak(gateway, seconds, seed=args.seed).run()
    start, end = result.rss_after_warmup(warmup)
    if end - start > RSS_GROWTH_LIMIT_KIB:
        result.problems.append(f"RSS grew by {(end - start) // 1024} MiB after warm-up")
    print(result.summary(warmup))
    print("RSS samples (s, MiB):", " ".join(f"{at:.0f}:{kib / 1024:.1f}" for at, kib in result.rss_kib[::10]))
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
