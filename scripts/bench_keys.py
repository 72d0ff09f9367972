"""Measure key verification and key listing on SQLite with many keys (run through `scripts/bench keys`).

A throw-away instance folder gets the real schema and N keys (default 10,000) with real hashes; then
verify_key() runs for random valid keys, unknown keys and malformed keys, and list_keys() for a few pages.
Prints medians and tails in microseconds. Measured, not asserted: the target is a median <= 100 us.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timed(fn, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _report(label: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"{label:<44} median {median:9.1f} us   p95 {p95:9.1f} us   p99 {p99:9.1f} us   (n={len(ordered)})")
    return median


def _fill(count: int, pepper: bytes, prefix: str) -> list[str]:
    """Insert count keys in one transaction (bulk, for speed); returns a sample of their plaintexts."""
    from app.database import utcnow
    from app.extensions import db
    from app.keys import secrets
    from app.keys.models import ApiKey

    plaintexts, rows, now = [], [], utcnow()
    for i in range(count):
        raw = secrets.generate_key(prefix)
        plaintexts.append(raw)
        rows.append({"public_id": secrets.new_public_id(), "name": f"bench key {i:05d}",
                     "prefix": secrets.display_prefix(raw), "secret_hash": secrets.hash_key(pepper, raw),
                     "scope": "full", "status": ("active", "active", "active", "disabled", "revoked")[i % 5],
                     "created_at": now, "quota_monthly": False, "used_micro": 0, "reserved_micro": 0})
    db.session.execute(ApiKey.__table__.insert(), rows)
    db.session.commit()
    return plaintexts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000, help="keys in the table (default 10,000)")
    parser.add_argument("--rounds", type=int, default=5_000, help="verifications per case (default 5,000)")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from app.keys import secrets, service

    with tempfile.TemporaryDirectory(prefix="pforte-bench-keys-") as tmp:
        app = create_app({"INSTANCE_PATH": tmp, "PFORTE_DATABASE_URL": f"sqlite:///{tmp}/pforte.db"})
        with app.app_context():
            upgrade()
            pepper, prefix = app.config["PFORTE_KEY_PEPPER"], app.config["PFORTE_KEY_PREFIX"]
            started = time.perf_counter()
            plaintexts = _fill(args.keys, pepper, prefix)
            print(f"{args.keys} keys inserted in {time.perf_counter() - started:.1f} s "
                  f"(SQLite, {app.config['SQLALCHEMY_DATABASE_URI']})")
            active = [raw for i, raw in enumerate(plaintexts) if i % 5 < 3]
            rng = random.Random(1)
            for raw in active[:200]:  # warm the connection pool, statement cache and page cache
                service.verify_key(raw)
            unknown = secrets.generate_key(prefix)
            malformed = plaintexts[0][:-1] + ("A" if plaintexts[0][-1] != "A" else "B")
            assert service.verify_key(active[0]).__class__.__name__ == "KeyContext"
            assert service.verify_key(unknown).reason == "unknown"
            assert service.verify_key(malformed).reason == "malformed"

            rounds = args.rounds
            median = _report("verify_key, valid key (random of 6,000)",
                             _timed(lambda: service.verify_key(rng.choice(active)), rounds))
            verify = service.verify_key
            _report("verify_key, well-formed unknown key", _timed(lambda: verify(unknown), rounds))
            _report("verify_key, malformed key (no DB)", _timed(lambda: verify(malformed), rounds))
            _report("hash_key alone", _timed(lambda: secrets.hash_key(pepper, unknown), rounds))

            last = max(1, args.keys // service.PAGE_SIZE)
            listings = {
                "list_keys page 1": {},
                f"list_keys page {last} (last)": {"page": last},
                "list_keys status=active page 2": {"status": "active", "page": 2},
                "list_keys status=revoked page 2": {"status": "revoked", "page": 2},
                "list_keys search 'key 0999'": {"search": "key 0999"},
                "list_keys search by prefix": {"search": active[5][:12]},
            }
            for label, query in listings.items():
                _report(label, _timed(lambda query=query: service.list_keys(**query), 200))
        print(f"\nverify_key median: {median:.1f} us (target <= 100 us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
