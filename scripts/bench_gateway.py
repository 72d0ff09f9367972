"""Gateway against a direct call to the (fake) upstream, on this machine: `scripts/bench [part] [options]`.

Parts:
  gateway   plain requests with wrk: added latency at concurrency 1, throughput at concurrency 32, the same
            with a key that has every restriction set (issue 4), and throughput through an upstream that
            closes its kept-alive connections every few requests (errors must stay 0)
  streams   short streams (32 chunks) at concurrency 32: streams/s and time to first byte as fast as the
            clients can go (closed loop: the gateway at full CPU, so TTFB includes queueing), and time to
            first byte at the target rate of 500 streams/s (open loop over at most 32 connections)
  responses /v1/responses against chat completions through the same gateway: added latency at c1 and
            throughput at c32 (wrk), and 32-chunk streams at concurrency 32; target: no more than chat's
            overhead plus 20 %. Also the native variant: /v1/responses through a connection whose upstream
            offers the Responses API (forwarded unchanged), against calling the fake upstream's
            /v1/responses directly (reported, no target)
  hold      2,000 concurrent 10-second streams held by one `pforte serve`: errors and peak RSS
  all       keys + gateway + streams + hold, then one summary table against the targets (the default)

Each part starts a fresh stack (fake upstream, `pforte init`, connection/model/keys through the real CLI,
`pforte serve` on loopback), alternates direct and gateway runs so that background noise hits both, prints
medians of the runs side by side, and stops everything it started. --quick: fewer, shorter runs.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time

from bench_harness import (
    CHURN_MODEL,
    NATIVE_MODEL,
    ROOT,
    Stack,
    chat_body,
    hold_streams,
    machine_load,
    median,
    paced_stream_load,
    percentile,
    responses_body,
    say,
    stream_load,
    wrk,
)

STREAM_CONTENT = "Stream the benchmark answer. [fake chunks=32]"
HOLD_CONTENT = "Hold this stream open. [fake chunks=32 chunk_delay={delay:.3f}]"
HOLD_EVENTS = 35  # role chunk, 32 words, finish chunk, usage chunk: one delay before each

TARGETS = {
    "added_p50_ms": 1.5, "added_p99_ms": 5.0, "rps_c32": 800, "streams_per_s": 500, "ttfb_overhead_ms": 3.0,
    "hold_rss_mb": 300, "policy_pct": 10.0, "verify_us": 100.0, "responses_pct": 20.0,
}


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "app",
                                "tests/fake_upstream.py"], capture_output=True, text=True).stdout.strip()
        return out + ("+uncommitted" if dirty else "")
    except OSError:
        return "?"


def fmt_errors(errors: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in errors.items() if v) or "0"


# --- gateway: plain requests -------------------------------------------------------------------

def bench_gateway(stack: Stack, args) -> dict:
    plain, restricted = stack.keys["plain"], stack.keys["restricted"]
    body = chat_body()
    work = stack.workdir
    gw_port, path = stack.gateway
    up_port, _ = stack.direct
    say(f"\n== gateway: plain chat completions, wrk, {args.runs} runs × {args.seconds:g} s "
        f"(load {machine_load()})")
    for port, key in ((up_port, plain), (gw_port, plain), (gw_port, restricted)):  # warm up
        wrk(port, path, key, body, connections=32, seconds=1, workdir=work)
    cases = {  # name: (port, key, connections, model)
        "direct c1": (up_port, plain, 1), "gateway c1": (gw_port, plain, 1),
        "restricted c1": (gw_port, restricted, 1),
        "direct c32": (up_port, plain, 32), "gateway c32": (gw_port, plain, 32),
        "restricted c32": (gw_port, restricted, 32),
    }
    results: dict[str, list] = {name: [] for name in cases}
    names = list(cases)
    for run in range(args.runs):
        order = names if run % 2 == 0 else names[::-1]
        for name in order:
            port, key, connections = cases[name]
            result = wrk(port, path, key, body, connections=connections, seconds=args.seconds, workdir=work)
            results[name].append(result)
            say(f"  run {run + 1} {name:15} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  errors {fmt_errors(result.errors)}")
    churn = wrk(gw_port, path, plain, chat_body(model=CHURN_MODEL), connections=32, seconds=args.seconds,
                workdir=work)
    say(f"  churn (upstream closes every {stack.churn_every} requests) {churn.rps:8.0f} req/s  "
        f"errors {fmt_errors(churn.errors)}")

    def med(name: str, attribute: str) -> float:
        return median(getattr(r, attribute) for r in results[name])

    summary = {name: {"rps": med(name, "rps"), "p50_ms": med(name, "p50_ms"), "p90_ms": med(name, "p90_ms"),
                      "p99_ms": med(name, "p99_ms"), "errors": sum(r.error_count for r in results[name])}
               for name in cases}
    summary["churn c32"] = {"rps": churn.rps, "p50_ms": churn.p50_ms, "p90_ms": churn.p90_ms,
                            "p99_ms": churn.p99_ms, "errors": churn.error_count}
    say(f"\n  medians of {args.runs} runs        req/s    p50 ms    p90 ms    p99 ms   errors")
    for name, s in summary.items():
        say(f"  {name:28} {s['rps']:8.0f} {s['p50_ms']:9.2f} {s['p90_ms']:9.2f} {s['p99_ms']:9.2f}   {s['errors']}")
    d1, g1, r1 = summary["direct c1"], summary["gateway c1"], summary["restricted c1"]
    d32, g32, r32 = summary["direct c32"], summary["gateway c32"], summary["restricted c32"]
    out = {
        "added_p50_ms": g1["p50_ms"] - d1["p50_ms"], "added_p99_ms": g1["p99_ms"] - d1["p99_ms"],
        "restricted_added_p50_ms": r1["p50_ms"] - d1["p50_ms"],
        "rps_c32": g32["rps"], "direct_rps_c32": d32["rps"], "restricted_rps_c32": r32["rps"],
        "errors_c32": g32["errors"] + r32["errors"], "churn_rps": churn.rps, "churn_errors": churn.error_count,
        "p50_c1_ms": g1["p50_ms"], "restricted_p50_c1_ms": r1["p50_ms"],
        "p50_c32_ms": g32["p50_ms"], "restricted_p50_c32_ms": r32["p50_ms"],
    }
    out["policy_latency_pct"] = 100 * (r1["p50_ms"] / g1["p50_ms"] - 1)
    out["policy_rps_pct"] = 100 * (r32["rps"] / g32["rps"] - 1)
    say(f"\n  added latency c1: p50 {out['added_p50_ms']:+.2f} ms (target ≤ {TARGETS['added_p50_ms']}), "
        f"p99 {out['added_p99_ms']:+.2f} ms (target ≤ {TARGETS['added_p99_ms']:g})")
    say(f"  throughput c32: gateway {g32['rps']:.0f} req/s = {g32['rps'] / d32['rps']:.2f} × direct "
        f"{d32['rps']:.0f} (target ≥ {TARGETS['rps_c32']}, 0 errors)")
    say(f"  restricted key vs unrestricted: latency c1 p50 {out['policy_latency_pct']:+.1f} %, "
        f"added {out['restricted_added_p50_ms']:+.2f} vs {out['added_p50_ms']:+.2f} ms; "
        f"throughput c32 {out['policy_rps_pct']:+.1f} % (target within {TARGETS['policy_pct']:g} %)")
    out["rss_kb"] = stack.rss_kb()
    return out


# --- streams ---------------------------------------------------------------------------------

def bench_streams(stack: Stack, args) -> dict:
    key = stack.keys["plain"]
    body = chat_body(STREAM_CONTENT, stream=True)
    gw_port, path = stack.gateway
    up_port, _ = stack.direct
    say(f"\n== streams: 32-chunk streams, concurrency {args.stream_concurrency}, {args.runs} runs × "
        f"{args.seconds:g} s (load {machine_load()})")
    for port in (up_port, gw_port):
        stream_load(port, path, key, body, concurrency=args.stream_concurrency, seconds=1)
    results: dict[str, list] = {"direct": [], "gateway": []}
    for run in range(args.runs):
        order = ("direct", "gateway") if run % 2 == 0 else ("gateway", "direct")
        for name in order:
            port = up_port if name == "direct" else gw_port
            result = stream_load(port, path, key, body, concurrency=args.stream_concurrency, seconds=args.seconds)
            results[name].append(result)
            say(f"  run {run + 1} {name:8} {result.rate:7.0f} streams/s  ttfb p50 {median(result.ttfb_ms):6.2f} ms "
                f"p99 {percentile(result.ttfb_ms, 0.99):6.2f} ms  total p50 {median(result.total_ms):6.2f} ms  "
                f"errors {result.errors} {result.error_kinds or ''}")
    summary = {name: {"rate": median(r.rate for r in runs), "ttfb_p50": median(median(r.ttfb_ms) for r in runs),
                      "ttfb_p99": median(percentile(r.ttfb_ms, 0.99) for r in runs),
                      "total_p50": median(median(r.total_ms) for r in runs),
                      "errors": sum(r.errors for r in runs)} for name, runs in results.items()}
    d, g = summary["direct"], summary["gateway"]
    out = {"streams_per_s": g["rate"], "direct_streams_per_s": d["rate"],
           "ttfb_overhead_ms": g["ttfb_p50"] - d["ttfb_p50"], "ttfb_p50_ms": g["ttfb_p50"],
           "direct_ttfb_p50_ms": d["ttfb_p50"], "ttfb_p99_ms": g["ttfb_p99"], "stream_errors": g["errors"]}
    say("\n  medians         streams/s  ttfb p50  ttfb p99  total p50  errors")
    for name, s in summary.items():
        say(f"  {name:15} {s['rate']:9.0f} {s['ttfb_p50']:9.2f} {s['ttfb_p99']:9.2f} {s['total_p50']:10.2f}  "
            f"{s['errors']}")
    say(f"  gateway {g['rate']:.0f} streams/s = {g['rate'] / d['rate']:.2f} × direct (target ≥ "
        f"{TARGETS['streams_per_s']}); ttfb overhead p50 {out['ttfb_overhead_ms']:+.2f} ms "
        f"(target ≤ {TARGETS['ttfb_overhead_ms']:g})")
    out.update(bench_paced_streams(stack, args, body))
    out["rss_kb"] = stack.rss_kb()
    return out


def bench_paced_streams(stack: Stack, args, body: dict) -> dict:
    """TTFB at the target rate (not at saturation), timed from each stream's scheduled start."""
    key = stack.keys["plain"]
    gw_port, path = stack.gateway
    up_port, _ = stack.direct
    rate = TARGETS["streams_per_s"]
    say(f"\n  paced: {rate} streams/s offered over at most {args.stream_concurrency} connections")
    results: dict[str, list] = {"direct": [], "gateway": []}
    for run in range(args.runs):
        order = ("direct", "gateway") if run % 2 == 0 else ("gateway", "direct")
        for name in order:
            port = up_port if name == "direct" else gw_port
            result = paced_stream_load(port, path, key, body, rate=rate, concurrency=args.stream_concurrency,
                                       seconds=args.seconds)
            results[name].append(result)
            say(f"  run {run + 1} {name:8} {result.rate:7.0f} streams/s  ttfb p50 {median(result.ttfb_ms):6.2f} ms "
                f"p99 {percentile(result.ttfb_ms, 0.99):6.2f} ms  errors {result.errors} {result.error_kinds or ''}")
    d, g = ({"ttfb_p50": median(median(r.ttfb_ms) for r in runs),
             "ttfb_p99": median(percentile(r.ttfb_ms, 0.99) for r in runs),
             "errors": sum(r.errors for r in runs)} for runs in (results["direct"], results["gateway"]))
    out = {"paced_ttfb_overhead_ms": g["ttfb_p50"] - d["ttfb_p50"], "paced_ttfb_p50_ms": g["ttfb_p50"],
           "paced_direct_ttfb_p50_ms": d["ttfb_p50"], "paced_ttfb_p99_ms": g["ttfb_p99"],
           "paced_errors": g["errors"]}
    say(f"  ttfb p50 gateway {g['ttfb_p50']:.2f} ms, direct {d['ttfb_p50']:.2f} ms: overhead "
        f"{out['paced_ttfb_overhead_ms']:+.2f} ms (target ≤ {TARGETS['ttfb_overhead_ms']:g}); errors {g['errors']}")
    return out


# --- responses ------------------------------------------------------------------------------

def bench_responses(stack: Stack, args) -> dict:
    """/v1/responses against /v1/chat/completions, both through the gateway and against a direct call."""
    key = stack.keys["plain"]
    work = stack.workdir
    gw_port, chat_path = stack.gateway
    up_port, direct_path = stack.direct
    resp_path = "/v1/responses"
    say(f"\n== responses: /v1/responses against chat completions, {args.runs} runs × {args.seconds:g} s "
        f"(load {machine_load()})")
    cases = {  # name: (port, path, body, connections)
        "direct c1": (up_port, direct_path, chat_body(), 1), "chat c1": (gw_port, chat_path, chat_body(), 1),
        "responses c1": (gw_port, resp_path, responses_body(), 1),
        "chat c32": (gw_port, chat_path, chat_body(), 32), "responses c32": (gw_port, resp_path, responses_body(), 32),
        "direct resp c1": (up_port, resp_path, responses_body(), 1),
        "native c1": (gw_port, resp_path, responses_body(model=NATIVE_MODEL), 1),
        "native c32": (gw_port, resp_path, responses_body(model=NATIVE_MODEL), 32),
    }
    for port, path, body, _ in cases.values():  # warm up
        wrk(port, path, key, body, connections=32, seconds=1, workdir=work)
    results: dict[str, list] = {name: [] for name in cases}
    streams: dict[str, list] = {"chat": [], "responses": [], "native": []}
    stream_cases = {"chat": (chat_path, chat_body(STREAM_CONTENT, stream=True)),
                    "responses": (resp_path, responses_body(STREAM_CONTENT, stream=True)),
                    "native": (resp_path, responses_body(STREAM_CONTENT, stream=True, model=NATIVE_MODEL))}
    for run in range(args.runs):
        names = list(cases) if run % 2 == 0 else list(cases)[::-1]
        for name in names:
            port, path, body, connections = cases[name]
            result = wrk(port, path, key, body, connections=connections, seconds=args.seconds, workdir=work)
            results[name].append(result)
            say(f"  run {run + 1} {name:14} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                f"errors {fmt_errors(result.errors)}")
        for name in (("chat", "responses", "native") if run % 2 == 0 else ("native", "responses", "chat")):
            path, body = stream_cases[name]
            result = stream_load(gw_port, path, key, body, concurrency=args.stream_concurrency, seconds=args.seconds)
            streams[name].append(result)
            say(f"  run {run + 1} {name:9} streams {result.rate:7.0f} streams/s  ttfb p50 "
                f"{median(result.ttfb_ms):6.2f} ms  errors {result.errors} {result.error_kinds or ''}")

    def med(name: str, attribute: str) -> float:
        return median(getattr(r, attribute) for r in results[name])

    direct = med("direct c1", "p50_ms")
    chat_added, resp_added = med("chat c1", "p50_ms") - direct, med("responses c1", "p50_ms") - direct
    out = {
        "responses_added_p50_ms": resp_added, "chat_added_p50_ms": chat_added,
        "responses_rps_c32": med("responses c32", "rps"), "chat_rps_c32": med("chat c32", "rps"),
        "responses_streams_per_s": median(r.rate for r in streams["responses"]),
        "chat_streams_per_s": median(r.rate for r in streams["chat"]),
        "responses_errors": sum(r.error_count for name in ("responses c1", "responses c32") for r in results[name])
        + sum(r.errors for r in streams["responses"]),
    }
    out["native_added_p50_ms"] = med("native c1", "p50_ms") - med("direct resp c1", "p50_ms")
    out["native_rps_c32"] = med("native c32", "rps")
    out["native_streams_per_s"] = median(r.rate for r in streams["native"])
    out["native_errors"] = sum(r.error_count for name in ("native c1", "native c32") for r in results[name]) \
        + sum(r.errors for r in streams["native"])
    out["responses_rps_pct"] = 100 * (out["responses_rps_c32"] / out["chat_rps_c32"] - 1)
    out["responses_streams_pct"] = 100 * (out["responses_streams_per_s"] / out["chat_streams_per_s"] - 1)
    say(f"\n  added latency c1 p50: responses {resp_added:+.2f} ms, chat {chat_added:+.2f} ms "
        f"(target ≤ chat × 1.2 = {chat_added * 1.2:+.2f})")
    say(f"  throughput c32: responses {out['responses_rps_c32']:.0f}, chat {out['chat_rps_c32']:.0f} req/s "
        f"({out['responses_rps_pct']:+.1f} %)")
    say(f"  streams c{args.stream_concurrency}: responses {out['responses_streams_per_s']:.0f}, chat "
        f"{out['chat_streams_per_s']:.0f} streams/s ({out['responses_streams_pct']:+.1f} %); "
        f"errors {out['responses_errors']}")
    say(f"  native (forwarded unchanged): added latency c1 p50 {out['native_added_p50_ms']:+.2f} ms (against the "
        f"upstream's /v1/responses), throughput c32 {out['native_rps_c32']:.0f} req/s, streams "
        f"{out['native_streams_per_s']:.0f} streams/s; errors {out['native_errors']}")
    return out


# --- hold ------------------------------------------------------------------------------------

def bench_hold(stack: Stack, args) -> dict:
    key = stack.keys["plain"]
    delay = args.hold_seconds / HOLD_EVENTS
    body = chat_body(HOLD_CONTENT.format(delay=delay), stream=True)
    port, path = stack.gateway
    before = stack.rss_kb()
    say(f"\n== hold: {args.hold_count} concurrent {args.hold_seconds:g}-second streams through one process "
        f"(load {machine_load()}); RSS before {before.get('VmRSS', 0) / 1024:.0f} MB")
    peak = {"rss": 0, "open": 0}

    def tick(open_now: int) -> None:
        peak["rss"] = max(peak["rss"], stack.rss_kb().get("VmRSS", 0))
        peak["open"] = max(peak["open"], open_now)

    run = hold_streams(port, path, key, body, count=args.hold_count, ramp_seconds=args.hold_ramp,
                       timeout=args.hold_seconds + 60, on_tick=tick)
    after = stack.rss_kb()
    out = {"hold_count": args.hold_count, "hold_completed": run.completed, "hold_errors": run.errors,
           "hold_error_kinds": run.error_kinds, "hold_peak_open": run.peak_open,
           "hold_rss_mb": after.get("VmHWM", 0) / 1024, "hold_rss_sampled_mb": peak["rss"] / 1024,
           "hold_rss_before_mb": before.get("VmRSS", 0) / 1024,
           "hold_duration_p50_s": median(run.total_ms) / 1000, "hold_duration_max_s": max(run.total_ms or [0]) / 1000,
           "hold_ttfb_p50_ms": median(run.ttfb_ms), "hold_ttfb_p99_ms": percentile(run.ttfb_ms, 0.99)}
    say(f"  completed {run.completed}/{args.hold_count}, errors {run.errors} {run.error_kinds or ''}, "
        f"peak open at once {run.peak_open}")
    say(f"  stream duration p50 {out['hold_duration_p50_s']:.2f} s, max {out['hold_duration_max_s']:.2f} s; "
        f"ttfb p50 {out['hold_ttfb_p50_ms']:.1f} ms, p99 {out['hold_ttfb_p99_ms']:.1f} ms")
    say(f"  peak RSS of pforte serve {out['hold_rss_mb']:.0f} MB (VmHWM; sampled {out['hold_rss_sampled_mb']:.0f} MB;"
        f" target ≤ {TARGETS['hold_rss_mb']})")
    return out


# --- keys (the keys helper's benchmark, run as it is) -------------------------------------------

def bench_keys(args) -> dict:
    rounds = "1000" if args.quick else "5000"
    say(f"\n== keys: scripts/bench keys --rounds {rounds}")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_keys.py"), "--rounds", rounds],
                            capture_output=True, text=True, cwd=ROOT)
    print(result.stdout, end="")
    match = re.search(r"verify_key median: ([\d.]+) us", result.stdout)
    if result.returncode or not match:
        say(f"  keys benchmark failed: {result.stderr.strip()[-500:]}")
        return {}
    return {"verify_us": float(match.group(1))}


# --- summary ---------------------------------------------------------------------------------

def summary_table(results: dict) -> None:
    def row(label, value, target, ok, unit=""):
        if value is None:
            return
        mark = "met" if ok else "MISSED"
        say(f"  {label:46} {value:>12} {unit:9} {target:>16}   {mark}")

    r = results
    say(f"\n== summary (commit {commit()}, load {machine_load()}, medians)")
    say(f"  {'measure':46} {'value':>12} {'':9} {'target':>16}   status")
    if "verify_us" in r:
        row("verify_key, 10,000 keys on SQLite", f"{r['verify_us']:.1f}", "≤ 100", r["verify_us"] <= 100, "µs")
    if "added_p50_ms" in r:
        row("added latency c1 p50 (gateway − direct)", f"{r['added_p50_ms']:+.2f}", "≤ 1.5",
            r["added_p50_ms"] <= TARGETS["added_p50_ms"], "ms")
        row("added latency c1 p99 (gateway − direct)", f"{r['added_p99_ms']:+.2f}", "≤ 5",
            r["added_p99_ms"] <= TARGETS["added_p99_ms"], "ms")
        row(f"throughput c32 (direct {r['direct_rps_c32']:.0f})", f"{r['rps_c32']:.0f}", "≥ 800, 0 errors",
            r["rps_c32"] >= TARGETS["rps_c32"] and r["errors_c32"] == 0, "req/s")
        row("errors c32 (both keys)", f"{r['errors_c32']}", "0", r["errors_c32"] == 0)
        row("upstream closing keep-alive: errors", f"{r['churn_errors']}", "0", r["churn_errors"] == 0,
            f"({r['churn_rps']:.0f}/s)")
        row("restricted key: latency c1 p50 vs unrestricted", f"{r['policy_latency_pct']:+.1f}", "within 10 %",
            abs(r["policy_latency_pct"]) <= TARGETS["policy_pct"], "%")
        row("restricted key: throughput c32 vs unrestricted", f"{r['policy_rps_pct']:+.1f}", "within 10 %",
            r["policy_rps_pct"] >= -TARGETS["policy_pct"], "%")
    if "streams_per_s" in r:
        row(f"32-chunk streams c32 (direct {r['direct_streams_per_s']:.0f})", f"{r['streams_per_s']:.0f}",
            "≥ 500", r["streams_per_s"] >= TARGETS["streams_per_s"] and r["stream_errors"] == 0, "streams/s")
        row("stream ttfb overhead p50, closed loop (saturated)", f"{r['ttfb_overhead_ms']:+.2f}", "≤ 3",
            r["ttfb_overhead_ms"] <= TARGETS["ttfb_overhead_ms"], "ms")
    if "paced_ttfb_overhead_ms" in r:
        row(f"stream ttfb overhead p50 at {TARGETS['streams_per_s']} streams/s", f"{r['paced_ttfb_overhead_ms']:+.2f}",
            "≤ 3", r["paced_ttfb_overhead_ms"] <= TARGETS["ttfb_overhead_ms"] and r["paced_errors"] == 0, "ms")
    if "responses_added_p50_ms" in r:
        pct = TARGETS["responses_pct"] / 100
        row(f"/v1/responses added latency c1 p50 (chat {r['chat_added_p50_ms']:+.2f})",
            f"{r['responses_added_p50_ms']:+.2f}", "≤ chat + 20 %",
            r["responses_added_p50_ms"] <= max(r["chat_added_p50_ms"], 0) * (1 + pct), "ms")
        row("/v1/responses throughput c32 vs chat", f"{r['responses_rps_pct']:+.1f}", "within 20 %",
            r["responses_rps_pct"] >= -TARGETS["responses_pct"], "%")
        row("/v1/responses 32-chunk streams vs chat", f"{r['responses_streams_pct']:+.1f}", "within 20 %",
            r["responses_streams_pct"] >= -TARGETS["responses_pct"] and r["responses_errors"] == 0, "%")
    if "hold_count" in r:
        row(f"{r['hold_count']} held streams: errors (peak open {r['hold_peak_open']})", f"{r['hold_errors']}",
            "0", r["hold_errors"] == 0 and r["hold_completed"] == r["hold_count"])
        row("held streams: peak RSS of the process", f"{r['hold_rss_mb']:.0f}", "≤ 300",
            r["hold_rss_mb"] <= TARGETS["hold_rss_mb"], "MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("gateway", "streams", "responses", "hold", "all"), nargs="?",
                        default="all")
    parser.add_argument("--quick", action="store_true", help="2 runs of 3 s (a rough figure in about a minute)")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default 3, quick 2)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 5, quick 3)")
    parser.add_argument("--stream-concurrency", type=int, default=32)
    parser.add_argument("--hold-count", type=int, default=2000)
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument("--hold-ramp", type=float, default=4.0, help="seconds over which the streams open")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    args.runs = args.runs or (2 if args.quick else 3)
    args.seconds = args.seconds or (3.0 if args.quick else 5.0)
    if not shutil.which("wrk") and args.part in ("gateway", "all"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    started = time.monotonic()
    say(f"pforte bench {args.part}: commit {commit()}, {args.runs} runs × {args.seconds:g} s, "
        f"load {machine_load()}")
    results: dict = {}
    if args.part == "all":
        results.update(bench_keys(args))
    with Stack() as stack:
        try:
            if args.part in ("gateway", "all"):
                results.update(bench_gateway(stack, args))
            if args.part in ("streams", "all"):
                results.update(bench_streams(stack, args))
            if args.part in ("responses", "all"):
                results.update(bench_responses(stack, args))
            if args.part in ("hold", "all"):
                results.update(bench_hold(stack, args))
        except Exception:
            say("server log:\n" + stack.server_log_tail())
            raise
        rss = stack.rss_kb()
        say(f"\npforte serve RSS now {rss.get('VmRSS', 0) / 1024:.0f} MB, peak {rss.get('VmHWM', 0) / 1024:.0f} MB")
    summary_table(results)
    say(f"\n({time.monotonic() - started:.0f} s)")
    if args.json:
        results["commit"] = commit()
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
