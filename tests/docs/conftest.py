"""One live server with the demo model for the docs tests of a module (starting one takes seconds)."""
from __future__ import annotations

import pytest
from support.accounts import client_as, make_user  # noqa: F401  (fixtures)
from support.demo_gateway import prepare_demo, running_server


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """(LiveServer, DemoGateway) shared by one test module."""
    with running_server(tmp_path_factory.mktemp("docs-live")) as server:
        yield server, prepare_demo(server)
