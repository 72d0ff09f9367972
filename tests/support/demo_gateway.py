"""A live server with the built-in demo model and a key, set up through the real `pforte` command."""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import requests

from support.database import fresh_database_url
from support.processes import LiveServer, free_port

DEMO_MODEL = "demo-chat"


@dataclass
class DemoGateway:
    url: str
    key: str
    key_id: str
    prefix: str
    model: str

    @property
    def api(self) -> str:
        return f"{self.url}/v1"

    def chat(self, content: str = "Hello", key: str | None = None, **extra) -> requests.Response:
        body = {"model": self.model, "messages": [{"role": "user", "content": content}], **extra}
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return requests.post(f"{self.api}/chat/completions", json=body, headers=headers, timeout=30,
                             stream=bool(extra.get("stream")))


def prepare_demo(server, model: str = DEMO_MODEL, key_name: str = "Demo key") -> DemoGateway:
    """Add a demo connection, an enabled demo model (1 / 2 credits per million tokens) and a key."""
    server.setup_cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    server.setup_cli("models", "add", "--id", model, "--connection", "demo", "--name", "Demo chat",
                     "--input-price", "1", "--output-price", "2")
    created = json.loads(server.setup_cli("keys", "create", "--name", key_name, "--json").stdout)
    return DemoGateway(server.url, created["key"], created["id"], created["prefix"], model)


def create_key(server, name: str) -> dict:
    """Another key: {"id", "key", "prefix", "name"}."""
    return json.loads(server.setup_cli("keys", "create", "--name", name, "--json").stdout)


def create_owner(server, username: str, password: str) -> None:
    server.setup_cli("users", "create", "--username", username, "--role", "owner", "--password-stdin",
                     input=password + "\n")


@contextlib.contextmanager
def running_server(instance: Path, env: dict | None = None):
    """A started `pforte serve` on its own database (for fixtures wider than one test)."""
    with fresh_database_url(instance, keep=True) as url:
        server_env = {"PFORTE_DATABASE_URL": url}
    if os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI"):
        server_env["PFORTE_RATELIMIT_STORAGE_URI"] = os.environ["PFORTE_TEST_RATELIMIT_STORAGE_URI"]
    server = LiveServer(instance, free_port(), {**server_env, **(env or {})})
    try:
        server.start()
        yield server
    finally:
        server.stop()


OWNER = ("owner", "owner-password-1")


@contextlib.contextmanager
def running_demo(instance: Path, env: dict | None = None):
    """A started server with an owner (OWNER), the demo model and a key: yields (server, DemoGateway)."""
    with running_server(instance, env) as server:
        create_owner(server, *OWNER)
        yield server, prepare_demo(server)
