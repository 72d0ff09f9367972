"""One live server with the demo model for the docs tests of a module (starting one takes seconds)."""
from __future__ import annotations

import os

import pytest
from support.accounts import client_as, make_user  # noqa: F401  (fixtures)
from support.database import fresh_database_url
from support.demo_gateway import prepare_demo
from support.processes import LiveServer, free_port


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """(LiveServer, DemoGateway) shared by one test module."""
    instance = tmp_path_factory.mktemp("docs-live")
    with fresh_database_url(instance, keep=True) as url:
        env = {"PFORTE_DATABASE_URL": url}
    if os.environ.get("PFORTE_TEST_RATELIMIT_STORAGE_URI"):
        env["PFORTE_RATELIMIT_STORAGE_URI"] = os.environ["PFORTE_TEST_RATELIMIT_STORAGE_URI"]
    server = LiveServer(instance, free_port(), env)
    try:
        server.start()
        yield server, prepare_demo(server)
    finally:
        server.stop()
