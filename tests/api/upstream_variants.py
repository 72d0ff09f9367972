"""Extra upstreams and connections for the session's live gateway (see conftest.py), added through the real
`pforte` command when a test asks for them (import the `*_fixture` names to use the fixtures):

  drop-test    a second fake upstream started with --drop-after 1: every kept-alive connection is closed
               without a word when the next request arrives on it (the transport's one retry)
  mrpc-test    a third one with --max-requests-per-connection 1 (Connection: close on every answer)
  total-test   the session's fake upstream through a connection with a 1 s read and a 2 s total timeout
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from api_helpers import wait_for
from support.processes import ROOT, FakeUpstream, free_port, wait_until_up


class FakeUpstreamWith(FakeUpstream):
    """tests/fake_upstream.py with extra command-line options."""

    def __init__(self, port: int, *options: str):
        super().__init__(port)
        self.options = options

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_upstream.py"), "--port",
                                         str(self.port), *self.options],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"{self.url}/health", self.process)

    def stats(self) -> dict:
        return requests.get(f"{self.url}/stats", timeout=5).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/stats/reset", timeout=5)


def served_model_ids(gateway) -> set[str]:
    response = requests.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {gateway.key}"},
                            timeout=10)
    return {model["id"] for model in response.json()["data"]}


def add_model(gateway, model_id: str, base_url: str, *connection_options: str) -> None:
    connection = f"conn-{model_id}"
    gateway.server.setup_cli("connections", "add", "--name", connection, "--kind", "openai", "--base-url",
                             base_url, *connection_options)
    gateway.server.setup_cli("models", "add", "--id", model_id, "--connection", connection, "--upstream-model",
                             "gpt-fake")
    wait_for(lambda: model_id in served_model_ids(gateway))


def served_upstream(gateway, model_id: str, *options: str):
    """A fake upstream started with `options`, offered through the gateway as `model_id`."""
    upstream = FakeUpstreamWith(free_port(), *options)
    upstream.start()
    try:
        add_model(gateway, model_id, f"{upstream.url}/v1")
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(scope="session", name="dropping_upstream")
def dropping_upstream_fixture(gateway):
    yield from served_upstream(gateway, "drop-test", "--drop-after", "1")


@pytest.fixture(scope="session", name="closing_upstream")
def closing_upstream_fixture(gateway):
    yield from served_upstream(gateway, "mrpc-test", "--max-requests-per-connection", "1")


@pytest.fixture(scope="session", name="total_limited")
def total_limited_fixture(gateway):
    add_model(gateway, "total-test", f"{gateway.upstream.url}/v1", "--connect-timeout", "1", "--read-timeout", "1",
              "--timeout", "2")
    return "total-test"


@pytest.fixture(scope="session", name="read_limited")
def read_limited_fixture(gateway):
    add_model(gateway, "read-test", f"{gateway.upstream.url}/v1", "--read-timeout", "1", "--timeout", "30")
    return "read-test"
