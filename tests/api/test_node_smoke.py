"""The official `openai` npm package under Node against a live gateway (tests/node/smoke.mjs)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1] / "node"


def test_openai_node_package_smoke(gateway):
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "openai").is_dir():
        if os.environ.get("PFORTE_REQUIRE_NODE") == "1":
            pytest.fail("node or tests/node/node_modules is missing but PFORTE_REQUIRE_NODE=1 "
                        "(.ci/run installs nodejs and npm; scripts/test runs npm install)")
        pytest.skip("node or the openai npm package is not installed (run scripts/test)")
    env = {**os.environ, "PFORTE_BASE_URL": f"{gateway.url}/v1", "PFORTE_API_KEY": gateway.key,
           "PFORTE_MODEL": "gpt-test"}
    done = subprocess.run([node, "smoke.mjs"], cwd=HERE, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "gpt-test" in result["models"] and "org/model:v1" in result["models"]
    assert result["chat"]["model"] == "gpt-test"
    assert result["chat"]["content"].startswith("This is the fake upstream")
    assert result["chat"]["usage"]["total_tokens"] > 0
    assert result["chat"]["requestId"].startswith("req_")
    assert result["stream"]["text"].startswith("This is the fake upstream")
    assert result["stream"]["usage"]["completion_tokens"] == 8
    assert result["error"] == {"name": "NotFoundError", "status": 404, "code": "model_not_found",
                               "requestID": result["error"]["requestID"]}
    assert result["error"]["requestID"].startswith("req_")
