"""Fixtures of the operations tests."""
from __future__ import annotations

import pytest
from support.opskit import add_fake_model, create_key, wait_for_model


@pytest.fixture
def gateway(live_server_factory, fake_upstream):
    """factory(env=None, name='a') → (server, key) with the fake model and one unlimited key, where key is
    what `pforte keys create --json` printed: {"id", "key", "prefix", "name"}."""

    def start(env: dict | None = None, name: str = "a", instance=None):
        server = live_server_factory(env=env, name=name, instance=instance)
        add_fake_model(server, fake_upstream)
        key = create_key(server, "ops-test")
        wait_for_model(server, key["key"])
        return server, key

    return start
