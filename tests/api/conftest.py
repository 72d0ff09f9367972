"""One live gateway for the API tests: a real `pforte serve`, the fake upstream as its own process, and a
catalog and keys created through the real `pforte` command. Started once per test session.

Models (public id → what answers it):
  gpt-test          openai connection "fake" → fake upstream model gpt-fake (prices 1 / 2 per million)
  org/model:v1      the same connection, an id with "/" and ":" → fake upstream model org/model:tag
  embed-test        embeddings only → text-embedding-fake
  azure-test        azure connection → deployment dep-fake
  demo              the built-in demo connection
  short-test        connection with a 1 s read timeout (for upstream_timeout)
  dead-test         connection to a port nobody listens on (for upstream_unavailable)
  disabled-test     added with --disabled
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from support.database import fresh_database_url
from support.processes import FakeUpstream, LiveServer, free_port

PING_SECONDS = 1
MAX_BODY_BYTES = 256 * 1024
INPUT_PRICE, OUTPUT_PRICE = 1.0, 2.0


@dataclass
class Gateway:
    server: LiveServer
    upstream: FakeUpstream
    database_url: str
    key: str
    key_id: str
    _engine: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, key: str | None = None, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, max_retries=0, **kwargs)

    def create_key(self, name: str, *options: str) -> dict:
        result = self.server.setup_cli("keys", "create", "--name", name, *options, "--json")
        return json.loads(result.stdout)

    def post(self, path: str, body, key: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.key}", **kwargs.pop("headers", {})}
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return requests.post(f"{self.url}{path}", data=data, headers=headers, timeout=30, **kwargs)

    def upstream_stats(self) -> dict:
        return requests.get(f"{self.upstream.url}/stats", timeout=5).json()

    def last_upstream_request(self) -> dict:
        return self.upstream_stats()["recent"][-1]

    def query(self, sql: str, **params) -> list:
        if self._engine is None:
            self._engine = create_engine(self.database_url, poolclass=NullPool)  # holds no idle connection
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params).mappings())

    def log_row(self, request_id: str) -> dict | None:
        rows = self.query("SELECT * FROM request_logs WHERE request_id = :rid", rid=request_id)
        return dict(rows[0]) if rows else None


@pytest.fixture(scope="session")
def gateway(tmp_path_factory) -> Gateway:
    upstream = FakeUpstream(free_port())
    upstream.start()
    instance: Path = tmp_path_factory.mktemp("api-gateway")
    with fresh_database_url(instance, keep=True) as url:
        database_url = url
    env = {
        "PFORTE_DATABASE_URL": database_url,
        "PFORTE_STREAM_PING_SECONDS": str(PING_SECONDS),
        "PFORTE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "PFORTE_RATELIMIT_PER_IP": "100000/minute",
        "FAKE_UPSTREAM_KEY": "sk-upstream-secret",
        "PFORTE_TESTING_FAULTS": "1",  # x-pforte-test-fault (app/gateway/openai_api.py), for the 500 tests
    }
    if os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI"):
        env["PFORTE_RATELIMIT_STORAGE_URI"] = os.environ["PFORTE_TEST_RATELIMIT_STORAGE_URI"]
    server = LiveServer(instance, free_port(), env)
    try:
        server.start()
        _catalog(server, upstream.url)
        key = json.loads(server.setup_cli("keys", "create", "--name", "api-tests", "--json").stdout)
        gateway = Gateway(server, upstream, database_url, key["key"], key["id"])
        yield gateway
    finally:
        server.stop()
        upstream.stop()


def _catalog(server: LiveServer, upstream_url: str) -> None:
    cli = server.setup_cli
    cli("connections", "add", "--name", "fake", "--kind", "openai", "--base-url", f"{upstream_url}/v1",
        "--api-key-env", "FAKE_UPSTREAM_KEY")
    cli("connections", "add", "--name", "fake-azure", "--kind", "azure", "--base-url", upstream_url,
        "--api-key-env", "FAKE_UPSTREAM_KEY", "--api-version", "2024-10-21")
    cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    cli("connections", "add", "--name", "fake-short", "--kind", "openai", "--base-url", f"{upstream_url}/v1",
        "--read-timeout", "1", "--timeout", "5")
    cli("connections", "add", "--name", "dead", "--kind", "openai", "--base-url",
        f"http://127.0.0.1:{free_port()}/v1", "--connect-timeout", "1")
    prices = ("--input-price", str(INPUT_PRICE), "--output-price", str(OUTPUT_PRICE))
    cli("models", "add", "--id", "gpt-test", "--connection", "fake", "--upstream-model", "gpt-fake",
        "--name", "GPT test", *prices)
    cli("models", "add", "--id", "org/model:v1", "--connection", "fake", "--upstream-model", "org/model:tag")
    cli("models", "add", "--id", "embed-test", "--connection", "fake", "--upstream-model", "text-embedding-fake",
        "--capabilities", "embeddings")
    cli("models", "add", "--id", "azure-test", "--connection", "fake-azure", "--upstream-model", "dep-fake")
    cli("models", "add", "--id", "demo", "--connection", "demo", "--name", "Demo")
    cli("models", "add", "--id", "short-test", "--connection", "fake-short", "--upstream-model", "gpt-fake")
    cli("models", "add", "--id", "dead-test", "--connection", "dead", "--upstream-model", "gpt-fake")
    cli("models", "add", "--id", "disabled-test", "--connection", "fake", "--disabled")


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return gateway.client()
