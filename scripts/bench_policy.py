"""What the per-key policy costs: the same load with an unrestricted key and with a key that has every
restriction set (scope, model and IP allow lists, monthly quota, minute/hour/month limits, max concurrent).

Starts a real `pforte serve` with the demo model (no network) on a throw-away instance and drives it with
wrk, alternating the two keys round by round so that background noise hits both alike.

    scripts/bench policy [--rounds 3] [--seconds 8] [--connections 16] [--storage redis://127.0.0.1:6379/0]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PFORTE = str(ROOT / ".venv" / "bin" / "pforte")
BIG = "2000000000"
RESTRICTIONS = ("--scope", "llm", "--models", "demo", "--allow-ip", "127.0.0.1", "--allow-ip", "::1",
                "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32", "--quota", "1000000000",
                "--quota-monthly", "--rpm", BIG, "--rph", BIG, "--monthly-requests", BIG,
                "--max-concurrent", "100000")
BODY = {"model": "demo", "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 16}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(env: dict, *args: str) -> str:
    return subprocess.run([PFORTE, *args], env=env, check=True, capture_output=True, text=True).stdout


def wrk(url: str, key: str, seconds: int, connections: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d %.1f %.1f %.1f\\n", summary.requests,\n'
        "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write"
        " + summary.errors.timeout,\n"
        "    summary.duration, latency:percentile(50), latency:percentile(99), latency.mean))\n"
        "end\n")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                          f"{url}/v1/chat/completions"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    total, errors, duration_us, p50, p99, mean = match.groups()
    return {"rps": int(total) / (int(duration_us) / 1e6), "errors": int(errors), "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000, "mean_ms": float(mean) / 1000}


def serial_latency(url: str, key: str, count: int) -> float:
    """Median milliseconds of one client sending requests one after another (no queueing)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(f"{url}/v1/chat/completions", json=BODY, headers=headers, timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serial", type=int, default=300, help="requests for the one-client latency")
    parser.add_argument("--storage", default="memory://", help="PFORTE_RATELIMIT_STORAGE_URI")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="pforte-bench-policy-"))
    port = free_port()
    env = {**os.environ, "PFORTE_INSTANCE_PATH": str(workdir / "instance"), "PFORTE_DATABASE_URL": "",
           "PFORTE_RATELIMIT_STORAGE_URI": args.storage, "PFORTE_RATELIMIT_PER_IP": "1000000000/minute",
           "PFORTE_TRUSTED_PROXIES": ""}
    server = None
    try:
        cli(env, "init")
        cli(env, "connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
        cli(env, "models", "add", "--id", "demo", "--connection", "demo", "--input-price", "1",
            "--output-price", "2")
        keys = {"unrestricted": json.loads(cli(env, "keys", "create", "--name", "plain", "--json"))["key"],
                "restricted": json.loads(cli(env, "keys", "create", "--name", "all-restrictions",
                                             *RESTRICTIONS, "--json"))["key"]}
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen([PFORTE, "serve", "--port", str(port)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.RequestException:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("pforte serve did not start") from None
                time.sleep(0.1)
        for key in keys.values():  # warm up both paths
            serial_latency(url, key, 50)
        results: dict[str, list[dict]] = {name: [] for name in keys}
        serial: dict[str, list[float]] = {name: [] for name in keys}
        for round_ in range(args.rounds):
            order = list(keys) if round_ % 2 == 0 else list(reversed(keys))
            for name in order:
                serial[name].append(serial_latency(url, keys[name], args.serial))
                results[name].append(wrk(url, keys[name], args.seconds, args.connections, workdir))
        print(f"storage {args.storage}, {args.rounds} rounds × {args.seconds} s, {args.connections} "
              "connections, demo model (medians over rounds)")
        summary = {}
        for name in keys:
            runs = results[name]
            summary[name] = {
                "rps": statistics.median(r["rps"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "serial_ms": statistics.median(serial[name]),
                "errors": sum(r["errors"] for r in runs),
            }
            s = summary[name]
            print(f"  {name:13} {s['rps']:8.0f} req/s   p50 {s['p50_ms']:6.2f} ms   "
                  f"p99 {s['p99_ms']:6.2f} ms   one client {s['serial_ms']:5.2f} ms   errors {s['errors']}")
        plain, strict = summary["unrestricted"], summary["restricted"]
        print(f"  restricted vs unrestricted: throughput {100 * (strict['rps'] / plain['rps'] - 1):+.1f} %, "
              f"one-client latency {100 * (strict['serial_ms'] / plain['serial_ms'] - 1):+.1f} %, "
              f"p50 under load {100 * (strict['p50_ms'] / plain['p50_ms'] - 1):+.1f} %")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
