"""The Anthropic part of the API tests' catalog, added to the session's live gateway (see conftest.py)
through the real `pforte` command, and small helpers for the anthropic SDK.

Models (public id → what answers it):
  claude-test    anthropic connection "fake-anthropic" (base URL without /v1) → fake upstream claude-fake
  claude-nokey   anthropic connection with a /v1 base URL and no credential (the upstream answers 401)
Failure modes are asked for with the fake upstream's text directives, e.g. "[fake status=529]".
"""

from __future__ import annotations

import json

import anthropic
import pytest
import requests
from api_helpers import wait_for

CLAUDE = "claude-test"
CLAUDE_NO_KEY = "claude-nokey"
UPSTREAM_SECRET = "sk-upstream-secret"  # FAKE_UPSTREAM_KEY of the session's gateway
_prepared: set[str] = set()


@pytest.fixture
def anthropic_catalog(gateway):
    """Adds the Anthropic connections and models once per gateway; waits until the server serves them."""
    if gateway.url not in _prepared:
        cli = gateway.server.setup_cli
        cli(
            "connections",
            "add",
            "--name",
            "fake-anthropic",
            "--kind",
            "anthropic",
            "--base-url",
            gateway.upstream.url,
            "--api-key-env",
            "FAKE_UPSTREAM_KEY",
        )
        cli(
            "connections",
            "add",
            "--name",
            "fake-anthropic-nokey",
            "--kind",
            "anthropic",
            "--base-url",
            f"{gateway.upstream.url}/v1",
        )
        cli(
            "models",
            "add",
            "--id",
            CLAUDE,
            "--connection",
            "fake-anthropic",
            "--upstream-model",
            "claude-fake",
            "--name",
            "Claude test",
            "--input-price",
            "3",
            "--output-price",
            "15",
        )
        cli(
            "models",
            "add",
            "--id",
            CLAUDE_NO_KEY,
            "--connection",
            "fake-anthropic-nokey",
            "--upstream-model",
            "claude-fake",
        )
        wait_for(lambda: CLAUDE_NO_KEY in served_model_ids(gateway))
        _prepared.add(gateway.url)
    return gateway


def served_model_ids(gateway) -> set[str]:
    response = requests.get(
        f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {gateway.key}"}, timeout=10
    )
    return {model["id"] for model in response.json()["data"]}


def anthropic_client(gateway, key: str | None = None, **kwargs) -> anthropic.Anthropic:
    """The anthropic SDK (2.x: the key goes as Authorization: Bearer) against the live gateway."""
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=gateway.url, api_key=key or gateway.key, **kwargs)


def upstream_messages_requests(gateway) -> list[dict]:
    return [r for r in gateway.upstream_stats()["recent"] if r["path"] == "/v1/messages"]


def sse_events(raw: bytes) -> list[tuple[str | None, dict | None]]:
    """(event name, parsed data) of every block of an SSE body; comments are skipped."""
    events = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = next((line[6:] for line in lines if line.startswith("data: ")), None)
        events.append((name, json.loads(data) if data is not None else None))
    return events
