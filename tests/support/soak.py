"""The soak: minutes of mixed load against one `pforte serve` on small quotas, then the invariants.

Load (threads of raw HTTP clients): plain chat completions, streams read to the end, streams the client
drops after a random number of events, Anthropic messages and Responses calls, on keys with a small credit
quota and a concurrency cap; one key revoked (and a new one made) every few seconds. Afterwards:
  - every answer was one of the expected ones (200, 401 for a revoked key, 402 for a used-up quota, 429 at
    the concurrency cap) and every request has its request-log row;
  - every key's used credits equal the sum of its rows, nothing is left reserved;
  - no key's used credits exceed its quota by more than its in-flight bound (its concurrency cap times the
    dearest request it made);
  - no concurrency slot is left held: each live key gets its full cap of parallel requests at once;
  - the server's RSS after warm-up stays flat (sampled every few seconds).
Used by scripts/soak (`--minutes N`) and tests/soak (a two-minute run in CI).
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field

import requests

from support.proof import ProofGateway, rss_kib
from support.waiting import wait_until

QUOTA_CREDITS = "0.01"  # 10,000 µ-credits: a key uses it up in a few hundred requests
WORDS = ("Amt", "Antrag", "Frist", "Bescheid", "Gebühr")
MAX_CONCURRENT = 4
KEYS = 6
CLIENTS = 8
REVOKE_EVERY_SECONDS = 5.0
RSS_EVERY_SECONDS = 2.0
EXPECTED = {200, 401, 402, 429}


@dataclass
class SoakResult:
    seconds: float
    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    keys_revoked: int = 0
    keys: int = 0
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def rss_after_warmup(self, warmup: float) -> tuple[int, int]:
        """(RSS at the end of warm-up, RSS at the end), in KiB; the first is the median of the samples in
        the warm-up's last tenth of the run, the second that of the run's last tenth."""
        def median_near(start: float, end: float) -> int:
            values = sorted(kib for at, kib in self.rss_kib if start <= at <= end) or [self.rss_kib[-1][1]]
            return values[len(values) // 2]

        tail = self.seconds / 10
        return median_near(warmup - tail, warmup), median_near(self.seconds - tail, self.seconds)

    def summary(self, warmup: float) -> str:
        start, end = self.rss_after_warmup(warmup)
        return (f"soak: {self.seconds:.0f} s, {self.requests} requests {dict(sorted(self.by_kind.items()))}, "
                f"statuses {dict(sorted(self.by_status.items()))}, {self.keys} keys ({self.keys_revoked} revoked "
                f"mid-run); RSS {self.rss_kib[0][1] // 1024} MiB at start, {start // 1024} MiB after warm-up, "
                f"{end // 1024} MiB at the end; problems: {self.problems or 'none'}")


class Soak:
    def __init__(self, gateway: ProofGateway, seconds: float, seed: int | None = None):
        self.gateway = gateway
        self.seconds = seconds
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.keys: list[dict] = []  # {"id", "key", "revoked"}
        self.ids: list[str] = []
        self.result = SoakResult(seconds)
        self.stop_at = 0.0

    # --- keys --------------------------------------------------------------------------------------------

    def new_key(self) -> None:
        created = self.gateway.create_key(f"soak {len(self.keys)}", "--quota", QUOTA_CREDITS,
                                          "--max-concurrent", str(MAX_CONCURRENT))
        with self.lock:
            self.keys.append({"id": created["id"], "key": created["key"], "revoked": False})

    def pick_key(self) -> str:
        with self.lock:
            live = [key for key in self.keys if not key["revoked"]] or self.keys
            if self.random.random() < 0.05:  # now and then a revoked key: 401
                live = self.keys
            return self.random.choice(live)["key"]

    def revoker(self) -> None:
        while time.monotonic() + REVOKE_EVERY_SECONDS < self.stop_at:
            time.sleep(REVOKE_EVERY_SECONDS)  # the load's pacing, not a synchronisation
            with self.lock:
                live = [key for key in self.keys if not key["revoked"]]
                victim = self.random.choice(live)
            self.gateway.server.setup_cli("keys", "revoke", victim["id"])
            with self.lock:
                victim["revoked"] = True
            self.result.keys_revoked += 1
            self.new_key()

    # --- load --------------------------------------------------------------------------------------------

    def record(self, kind: str, answer: requests.Response | None) -> None:
        with self.lock:
            self.result.requests += 1
            self.result.by_kind[kind] = self.result.by_kind.get(kind, 0) + 1
            if answer is None:
                return
            status = answer.status_code
            self.result.by_status[status] = self.result.by_status.get(status, 0) + 1
            self.ids.append(answer.headers.get("x-request-id", ""))
            if status not in EXPECTED:
                self.result.problems.append(f"{kind}: unexpected {status} {answer.text[:200]}")

    def one_request(self, rng: random.Random) -> None:
        key = self.pick_key()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        roll = rng.random()
        url = self.gateway.url
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
        chat = {"model": rng.choice(("gpt-test", "gpt-test", "demo")), "max_tokens": rng.choice((16, 64, 256)),
                "messages": [{"role": "user", "content": words}]}
        if roll < 0.35:
            self.record("plain", requests.post(f"{url}/v1/chat/completions", data=json.dumps(chat), headers=headers,
                                               timeout=60))
        elif roll < 0.6:
            chat["stream"] = True
            chat["messages"][0]["content"] += " [fake chunk_delay=0.01]"
            with requests.post(f"{url}/v1/chat/completions", data=json.dumps(chat), headers=headers, timeout=60,
                               stream=True) as answer:
                for _ in answer.iter_lines():
                    pass
                self.record("stream", answer)
        elif roll < 0.8:
            chat["stream"] = True
            chat["model"] = "gpt-test"
            chat["messages"][0]["content"] += " [fake chunk_delay=0.05 chunks=40]"
            answer = requests.post(f"{url}/v1/chat/completions", data=json.dumps(chat), headers=headers, timeout=60,
                                   stream=True)
            keep = rng.randint(0, 20)
            for index, _line in enumerate(answer.iter_lines()):
                if index >= keep:
                    break
            self.record("dropped stream", answer)
            answer.close()  # the client goes away mid-stream
        elif roll < 0.9:
            body = {"model": "claude-test", "max_tokens": rng.choice((16, 128)),
                    "messages": [{"role": "user", "content": words}], "stream": rng.random() < 0.5}
            with requests.post(f"{url}/v1/messages", data=json.dumps(body), headers=headers, timeout=60,
                               stream=True) as answer:
                for _ in answer.iter_lines():
                    pass
                self.record("messages", answer)
        else:
            body = {"model": "gpt-test", "input": words, "max_output_tokens": rng.choice((16, 128))}
            self.record("responses", requests.post(f"{url}/v1/responses", data=json.dumps(body), headers=headers,
                                                   timeout=60))

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.stop_at:
            try:
                self.one_request(rng)
            except requests.RequestException as exc:
                with self.lock:
                    self.result.problems.append(f"client error: {type(exc).__name__}: {exc}")

    def sampler(self, started: float) -> None:
        pid = self.gateway.server.process.pid
        while time.monotonic() < self.stop_at:
            self.result.rss_kib.append((time.monotonic() - started, rss_kib(pid)))
            time.sleep(RSS_EVERY_SECONDS)  # the sampling period
        self.result.rss_kib.append((time.monotonic() - started, rss_kib(pid)))

    def run(self) -> SoakResult:
        for _ in range(KEYS):
            self.new_key()
        started = time.monotonic()
        self.stop_at = started + self.seconds
        threads = [threading.Thread(target=self.client, args=(self.random.random(),)) for _ in range(CLIENTS)]
        threads += [threading.Thread(target=self.revoker), threading.Thread(target=self.sampler, args=(started,))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.result.keys = len(self.keys)
        self.check()
        return self.result

    # --- afterwards --------------------------------------------------------------------------------------

    def check(self) -> None:
        gateway, problems = self.gateway, self.result.problems
        ids = [rid for rid in self.ids if rid]
        if len(ids) != len(self.ids):
            problems.append(f"{len(self.ids) - len(ids)} answers without x-request-id")

        def missing() -> set[str]:
            return set(ids) - gateway.log_rows(ids)

        try:
            wait_until(lambda: not missing(), 30, "every request's row")
        except AssertionError:
            problems.append(f"{len(missing())} requests without a request-log row, e.g. {sorted(missing())[:5]}")
        problems += gateway.invariants()
        for row in gateway.query(
                "SELECT k.public_id, k.quota_micro, k.used_micro, k.max_concurrent, "
                "(SELECT MAX(r.credits_micro) FROM request_logs r WHERE r.key_id = k.id) AS dearest "
                "FROM api_keys k WHERE k.quota_micro IS NOT NULL"):
            bound = int(row["quota_micro"]) + int(row["max_concurrent"] or 1) * int(row["dearest"] or 0)
            if int(row["used_micro"]) > bound:
                problems.append(f"key {row['public_id']}: used {row['used_micro']} µ > quota {row['quota_micro']} µ "
                                f"+ in-flight bound")
        self.check_slots()

    def check_slots(self) -> None:
        """Each live key (quota left or not: a 402 comes after the slot is taken) gets MAX_CONCURRENT held
        requests at once: no slot of a finished request is still taken."""
        problems = self.result.problems
        live = [key for key in self.keys if not key["revoked"]]
        for key in live:
            statuses: list[int] = []
            answers = []

            def hold(token=key["key"]):
                answer = requests.post(
                    f"{self.gateway.url}/v1/chat/completions", timeout=60, stream=True,
                    headers={"Authorization": f"Bearer {token}"},
                    json={"model": "gpt-test", "stream": True, "max_tokens": 1,
                          "messages": [{"role": "user", "content": "[fake pause=1.5]"}]})
                with self.lock:
                    statuses.append(answer.status_code)
                    answers.append(answer)

            threads = [threading.Thread(target=hold) for _ in range(MAX_CONCURRENT)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for answer in answers:
                answer.close()
            if 429 in statuses:
                problems.append(f"key {key['id']}: a concurrency slot is still held after the run ({statuses})")
