"""Two `pforte serve` processes ("hosts" a and b) on one PostgreSQL schema and one Redis, as in the
reference scale-out deployment: each host has its own instance folder with a copy of the same secrets."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.database import create_schema, drop_schema, postgres_url, redis_url
from support.opskit import OWNER, add_fake_model, create_key, wait_for_model
from support.processes import FakeUpstream, LiveServer, free_port


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    database_url: str

    @property
    def servers(self) -> tuple[LiveServer, LiveServer]:
        return self.a, self.b


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base_url, storage = postgres_url(), redis_url()
    schema, url = create_schema(base_url)
    root = Path(tmp_path_factory.mktemp("scaleout"))
    env = {"PFORTE_DATABASE_URL": url, "PFORTE_RATELIMIT_STORAGE_URI": storage,
           "PFORTE_RATELIMIT_PER_IP": "100000/minute"}
    upstream = FakeUpstream(free_port())
    started: list = []
    try:
        upstream.start()
        started.append(upstream)
        (root / "host-a").mkdir()
        a = LiveServer(root / "host-a", free_port(), env)
        a.start()
        started.append(a)
        (root / "host-b").mkdir()
        # Every host needs the same secrets (key pepper, encryption key): copied, as an operator would.
        shutil.copy2(root / "host-a" / "secrets.json", root / "host-b" / "secrets.json")
        b = LiveServer(root / "host-b", free_port(), env)
        b.start()
        started.append(b)
        add_fake_model(a, upstream)
        a.setup_cli("users", "create", "--username", OWNER[0], "--role", "owner", "--password-stdin",
                    input=OWNER[1] + "\n")
        probe = create_key(a, "probe")["key"]
        for server in (a, b):
            wait_for_model(server, probe)
        yield Cluster(a, b, url)
    finally:
        for process in reversed(started):
            process.stop()
        drop_schema(base_url, schema)
