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


# --- live gateways ----------------------------------------------------------------------------------------

TRUSTED = "127.0.0.1/32,::1/128"
PRICED_INPUT, PRICED_OUTPUT = 100.0, 1000.0  # credits per million tokens: 1 output token = 1000 micro


class LiveGateway:
    """One or more `pforte serve` processes on one database (and one rate-limit storage), the fake upstream,
    a catalog made with the real CLI. Requests go round-robin over the processes unless one is named."""

    def __init__(self, servers, database_url: str, upstream):
        self.servers = servers
        self.database_url = database_url
        self.upstream = upstream
        self._turn = 0
        self._engine = None

    @property
    def url(self) -> str:
        return self.servers[0].url

    def next_url(self) -> str:
        self._turn += 1
        return self.servers[self._turn % len(self.servers)].url

    def cli(self, *args: str, **kwargs):
        return self.servers[0].cli(*args, **kwargs)

    def create_key(self, *options: str) -> dict:
        """`pforte keys create --name … --json [options]` → its JSON plus "row_id" (the table id)."""
        import json

        name = f"policy-{uuid.uuid4().hex[:8]}"
        created = json.loads(self.servers[0].setup_cli("keys", "create", "--name", name, *options, "--json").stdout)
        rows = self.query("SELECT id FROM api_keys WHERE public_id = :p", p=created["id"])
        created["row_id"] = rows[0]["id"]
        return created

    def request(self, method: str, path: str, key: str, body=None, ip: str | None = None,
                url: str | None = None, **kwargs):
        import requests

        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        if ip is not None:
            headers["X-Forwarded-For"] = ip
        return requests.request(method, f"{url or self.next_url()}{path}", json=body, headers=headers,
                                timeout=kwargs.pop("timeout", 30), **kwargs)

    def models(self, key: str, **kwargs):
        return self.request("GET", "/v1/models", key, **kwargs)

    def chat(self, key: str, model: str = "demo", content: str = "Hello", **kwargs):
        extra = kwargs.pop("extra", {})
        body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
        return self.request("POST", "/v1/chat/completions", key, body, **kwargs)

    def query(self, sql: str, **params) -> list[dict]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            self._engine = create_engine(self.database_url, poolclass=NullPool)  # holds no idle connection
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(text(sql), params).mappings()]

    def execute(self, sql: str, **params) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            self._engine = create_engine(self.database_url, poolclass=NullPool)  # holds no idle connection
        with self._engine.begin() as conn:
            conn.execute(text(sql), params)

    def key_row(self, row_id: int) -> dict:
        return self.query("SELECT * FROM api_keys WHERE id = :id", id=row_id)[0]

    def log_total(self, row_id: int) -> int:
        rows = self.query("SELECT COALESCE(SUM(credits_micro), 0) AS s FROM request_logs WHERE key_id = :id",
                          id=row_id)
        return int(rows[0]["s"])

    def upstream_requests(self) -> int:
        import requests

        by_path = requests.get(f"{self.upstream.url}/stats", timeout=5).json()["by_path"]
        return sum(count for path, count in by_path.items() if path.startswith("/v1/"))

    def namespace(self) -> str:
        """The rate-limit namespace of this installation (as app/policy/service.py derives it)."""
        import hashlib
        import json

        pepper = json.loads((self.servers[0].instance / "secrets.json").read_text())["key_pepper"].encode()
        return "pf:" + hashlib.sha256(b"ratelimit:" + pepper).hexdigest()[:12]

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self._engine is not None:
            self._engine.dispose()


def start_gateway(tmp_path_factory, env: dict | None = None, processes: int = 1,
                  storage: str = "memory://") -> LiveGateway:
    from support.database import fresh_database_url
    from support.processes import FakeUpstream, LiveServer, free_port

    upstream = FakeUpstream(free_port())
    upstream.start()
    instance = tmp_path_factory.mktemp("policy-live")
    with fresh_database_url(instance, keep=True) as url:
        database_url = url
    server_env = {"PFORTE_DATABASE_URL": database_url, "PFORTE_RATELIMIT_STORAGE_URI": storage,
                  "PFORTE_RATELIMIT_PER_IP": "60/minute", "PFORTE_TRUSTED_PROXIES": "",
                  "FAKE_UPSTREAM_KEY": "sk-upstream", **(env or {})}
    servers = []
    gateway = LiveGateway(servers, database_url, upstream)
    try:
        for _ in range(processes):
            server = LiveServer(instance, free_port(), server_env)
            servers.append(server)
            server.start()
        cli = servers[0].setup_cli
        cli("connections", "add", "--name", "fake", "--kind", "openai", "--base-url", f"{upstream.url}/v1",
            "--api-key-env", "FAKE_UPSTREAM_KEY")
        cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
        cli("models", "add", "--id", "priced", "--connection", "fake", "--upstream-model", "gpt-fake",
            "--input-price", str(PRICED_INPUT), "--output-price", str(PRICED_OUTPUT))
        cli("models", "add", "--id", "demo", "--connection", "demo")
    except BaseException:
        gateway.close()
        upstream.stop()
        raise
    return gateway


def stop_gateway(gateway: LiveGateway) -> None:
    storage = gateway.servers[0].env.get("PFORTE_RATELIMIT_STORAGE_URI", "")
    namespace = gateway.namespace()
    gateway.close()
    gateway.upstream.stop()
    if storage.startswith("redis"):
        import redis

        client = redis.Redis.from_url(storage)
        keys = list(client.scan_iter(match=f"*{namespace}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limits_gateway(request, tmp_path_factory):
    """For the rate-limit and concurrency tests: memory:// with one process, and Redis shared by two
    processes (requests alternate between them). Trusted proxy 127.0.0.1, so that X-Forwarded-For gives
    each test client an address of its own."""
    if request.param == "memory":
        gateway = start_gateway(tmp_path_factory, {"PFORTE_TRUSTED_PROXIES": TRUSTED})
    else:
        gateway = start_gateway(tmp_path_factory, {"PFORTE_TRUSTED_PROXIES": TRUSTED}, processes=2,
                                storage=redis_url())
    gateway.kind = request.param
    yield gateway
    stop_gateway(gateway)


SMALL_PER_IP = 5


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def small_ip_limit_gateway(request, tmp_path_factory):
    """Like limits_gateway, with a per-IP limit of SMALL_PER_IP requests per minute."""
    env = {"PFORTE_TRUSTED_PROXIES": TRUSTED, "PFORTE_RATELIMIT_PER_IP": f"{SMALL_PER_IP}/minute"}
    if request.param == "memory":
        gateway = start_gateway(tmp_path_factory, env)
    else:
        gateway = start_gateway(tmp_path_factory, env, processes=2, storage=redis_url())
    gateway.kind, gateway.per_ip = request.param, SMALL_PER_IP
    yield gateway
    stop_gateway(gateway)


@pytest.fixture(scope="module")
def gateway_factory(tmp_path_factory):
    """gateway_factory(env=None, processes=1, storage="memory://") → a started LiveGateway, stopped when the
    test module ends."""
    started: list[LiveGateway] = []

    def start(env: dict | None = None, processes: int = 1, storage: str = "memory://") -> LiveGateway:
        gateway = start_gateway(tmp_path_factory, env, processes, storage)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        stop_gateway(gateway)


@pytest.fixture(scope="module")
def rules_gateway(tmp_path_factory):
    """One process, memory://, trusted proxy 127.0.0.1: scope, model, IP and quota rules."""
    gateway = start_gateway(tmp_path_factory, {"PFORTE_TRUSTED_PROXIES": TRUSTED})
    yield gateway
    stop_gateway(gateway)


_addresses = iter(range(1, 1 << 24))


def unique_ip() -> str:
    """A client address nothing else in this test run uses (sent as X-Forwarded-For through the trusted
    proxy, so that per-IP counters of different tests never meet)."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@pytest.fixture
def client_ip() -> str:
    return unique_ip()


@pytest.fixture
def new_ip():
    """new_ip() → another unused client address."""
    return unique_ip


@pytest.fixture
def fresh_window():
    """fresh_window(seconds, needed): see wait_for_window."""
    return wait_for_window


def wait_for_window(seconds: int, needed: float) -> None:
    """Make sure at least `needed` seconds remain in the current clock-aligned window of `seconds` (the
    gateway's windows are aligned, see app/policy/ratelimits.py): otherwise wait for the next one."""
    import time

    left = seconds - time.time() % seconds
    if left >= needed:
        return
    boundary = time.time() + left
    deadline = boundary + 5
    while time.time() < boundary:  # waiting for the clock itself, the condition we need
        assert time.time() < deadline
        time.sleep(0.05)
