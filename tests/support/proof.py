"""The proof suites' gateway (fuzzing, faults, soak) and the bookkeeping invariants they check afterwards.

A `ProofGateway` is a real `pforte serve` in front of the fake upstream (tests/fake_upstream.py), with an
OpenAI connection (model `gpt-test`, prices 1 / 2 credits per million tokens), an Anthropic one
(`claude-test`), embeddings (`embed-test`) and the demo model, set up through the real `pforte` command.
`invariants()` reads the database directly: what the accounting promises, whatever the traffic was.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from support.database import fresh_database_url
from support.opskit import wait_for_model
from support.processes import FakeUpstream, LiveServer, free_port
from support.waiting import wait_until

UPSTREAM_SECRET = "sk-upstream-secret"
MODELS = ("gpt-test", "claude-test", "embed-test", "demo")


@dataclass
class ProofGateway:
    server: LiveServer
    upstream: FakeUpstream
    database_url: str
    key: str
    key_id: str
    _engine: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    def create_key(self, name: str, *options: str) -> dict:
        return json.loads(self.server.setup_cli("keys", "create", "--name", name, *options, "--json").stdout)

    def post(self, path: str, body, key: str | None = None, timeout: float = 30, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.key}", "Content-Type": "application/json",
                   **kwargs.pop("headers", {})}
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return requests.post(f"{self.url}{path}", data=data, headers=headers, timeout=timeout, **kwargs)

    def chat(self, content: str = "Hello", key: str | None = None, model: str = "gpt-test", **extra):
        body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
        return self.post("/v1/chat/completions", body, key=key)

    def query(self, sql: str, **params) -> list[dict]:
        if self._engine is None:
            self._engine = create_engine(self.database_url, poolclass=NullPool)  # holds no idle connection
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(text(sql), params).mappings()]

    def log_rows(self, request_ids) -> set[str]:
        """The request ids of `request_ids` that have their request-log row."""
        wanted = list(request_ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join(f":r{i}" for i in range(len(chunk)))
            rows = self.query(f"SELECT request_id FROM request_logs WHERE request_id IN ({marks})",
                              **{f"r{i}": rid for i, rid in enumerate(chunk)})
            found.update(row["request_id"] for row in rows)
        return found

    def invariants(self) -> list[str]:
        """What is wrong with the bookkeeping, as sentences (empty when all holds): for every key, used
        credits equal the sum of its request-log rows and nothing stays reserved; nothing stays reserved
        against the organisation allowance."""
        problems = []
        rows = self.query(
            "SELECT k.public_id, k.used_micro, k.reserved_micro, k.quota_micro, "
            "COALESCE((SELECT SUM(r.credits_micro) FROM request_logs r WHERE r.key_id = k.id), 0) AS logged "
            "FROM api_keys k")
        for row in rows:
            if int(row["used_micro"]) != int(row["logged"]):
                problems.append(f"key {row['public_id']}: used {row['used_micro']} µ, rows sum to {row['logged']} µ")
            if int(row["reserved_micro"]) != 0:
                problems.append(f"key {row['public_id']}: {row['reserved_micro']} µ still reserved")
        for row in self.query("SELECT period, reserved_micro FROM org_budget"):
            if int(row["reserved_micro"]) != 0:
                problems.append(f"organisation {row['period']}: {row['reserved_micro']} µ still reserved")
        return problems

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def catalog(server: LiveServer, upstream_url: str) -> None:
    """The proof gateway's connections and models (see the module docstring)."""
    cli = server.setup_cli
    cli("connections", "add", "--name", "fake", "--kind", "openai", "--base-url", f"{upstream_url}/v1",
        "--api-key-env", "FAKE_UPSTREAM_KEY")
    cli("connections", "add", "--name", "fake-anthropic", "--kind", "anthropic", "--base-url", upstream_url,
        "--api-key-env", "FAKE_UPSTREAM_KEY")
    cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    prices = ("--input-price", "1", "--output-price", "2")
    cli("models", "add", "--id", "gpt-test", "--connection", "fake", "--upstream-model", "gpt-fake", *prices)
    cli("models", "add", "--id", "claude-test", "--connection", "fake-anthropic", "--upstream-model",
        "claude-fake", *prices)
    cli("models", "add", "--id", "embed-test", "--connection", "fake", "--upstream-model", "text-embedding-fake",
        "--capabilities", "embeddings", *prices)
    cli("models", "add", "--id", "demo", "--connection", "demo", *prices)


@contextlib.contextmanager
def proof_gateway(instance: Path, env: dict | None = None, key_options: tuple[str, ...] = (),
                  database_url: str | None = None, upstream: FakeUpstream | None = None):
    """A started ProofGateway with one key (created with key_options); stops everything at the end."""
    own_upstream = upstream is None
    if own_upstream:
        upstream = FakeUpstream(free_port())
        upstream.start()
    if database_url is None:
        with fresh_database_url(instance, keep=True) as url:
            database_url = url
    server_env = {"PFORTE_DATABASE_URL": database_url, "FAKE_UPSTREAM_KEY": UPSTREAM_SECRET,
                  "PFORTE_RATELIMIT_PER_IP": "1000000/minute"}
    if os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI"):
        server_env["PFORTE_RATELIMIT_STORAGE_URI"] = os.environ["PFORTE_TEST_RATELIMIT_STORAGE_URI"]
    server = LiveServer(instance, free_port(), {**server_env, **(env or {})})
    gateway = None
    try:
        server.start()
        catalog(server, upstream.url)
        probe = json.loads(server.setup_cli("keys", "create", "--name", "catalog probe", "--json").stdout)
        for model in MODELS:  # with a key of its own, so that the proof key's limits are untouched
            wait_for_model(server, probe["key"], model)
        key = json.loads(server.setup_cli("keys", "create", "--name", "proof", *key_options, "--json").stdout)
        gateway = ProofGateway(server, upstream, database_url, key["key"], key["id"])
        yield gateway
    finally:
        if gateway is not None:
            gateway.close()
        server.stop()
        if own_upstream:
            upstream.stop()


def rss_kib(pid: int) -> int:
    """The resident set size of a process, in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def every_request_settled(gateway: ProofGateway):
    """Yield a list for the request ids of the answers a test module got; at the end, every one of them
    must have its request-log row and the credit invariants must hold."""
    ids: list[str] = []
    yield ids
    wait_until(lambda: gateway.log_rows(ids) == set(ids), 10, "every request to have its request-log row")
    assert gateway.invariants() == []
