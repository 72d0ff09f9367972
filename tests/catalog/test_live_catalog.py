"""A running `pforte serve` follows catalog changes made by another process (the CLI) within a second."""
from __future__ import annotations

import json
import time

import requests
from support.waiting import wait_until


def _model_ids(server, key: str) -> list[str]:
    response = requests.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


def test_the_server_sees_models_added_and_disabled_on_the_command_line(live_server):
    key = json.loads(live_server.cli("keys", "create", "--name", "catalog-test", "--json").stdout)["key"]
    assert _model_ids(live_server, key) == []  # the server has now cached an empty catalog

    live_server.cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    live_server.cli("models", "add", "--id", "team/demo:1", "--connection", "demo", "--name", "Demo")
    wait_until(lambda: _model_ids(live_server, key) == ["team/demo:1"], 5, "the new model showing up")

    chat = {"model": "team/demo:1", "messages": [{"role": "user", "content": "Hello"}]}
    answer = requests.post(f"{live_server.url}/v1/chat/completions", json=chat,
                           headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["model"] == "team/demo:1"

    live_server.cli("models", "disable", "team/demo:1")
    started = time.monotonic()
    wait_until(lambda: _model_ids(live_server, key) == [], 5, "the disabled model disappearing")
    assert time.monotonic() - started < 3.0
    refused = requests.post(f"{live_server.url}/v1/chat/completions", json=chat,
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
