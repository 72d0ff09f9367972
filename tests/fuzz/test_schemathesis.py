"""Property-based fuzzing of the client API from its own OpenAPI document (/v1/openapi.json) with
Schemathesis, against a live `pforte serve` with the fake upstream behind it: every operation and method,
every phase (examples, coverage, fuzzing, stateful), with a valid key and with none.

Checks: no 5xx, status codes, content types, headers and bodies (SSE events too) as documented, wrong
methods answered 405 with Allow, no answer without the key. Afterwards every request the fuzzer made has
its request-log row, and every key's used credits equal the sum of its rows with nothing left reserved.

Not checked: `positive_data_acceptance` and `negative_data_rejection`. The gateway passes fields it does not
check on to the upstream, which answers for them (a schema-invalid value may get 200 from the fake upstream),
and a whole-number float such as `max_tokens: 16.0`, which JSON Schema counts as an integer, is refused.

The cost is bounded by PFORTE_FUZZ_MAX_EXAMPLES (cases per operation and phase, default 12); the seed is
fixed (PFORTE_FUZZ_SEED, default 14) so that a failure can be replayed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.proof import MODELS, proof_gateway
from support.waiting import wait_until

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
MAX_EXAMPLES = os.environ.get("PFORTE_FUZZ_MAX_EXAMPLES", "12")
SEED = os.environ.get("PFORTE_FUZZ_SEED", "14")
CHECKS_LEFT_OUT = "positive_data_acceptance,negative_data_rejection"
# Model ids the fuzzer puts into most requests, so that they get past step 6 to the upstream and back.
CONFIG = f"""
[dictionaries.models]
values = {json.dumps(list(MODELS))}

[parameters]
"body.model" = {{ dictionary = "models", probability = 0.8 }}
"path.model" = {{ dictionary = "models", probability = 0.5 }}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with proof_gateway(tmp_path_factory.mktemp("fuzz"), key_options=("--keep-conversations",)) as gateway:
        yield gateway


def fuzz(gateway, folder: Path, headers: dict[str, str]) -> list[dict]:
    """Run Schemathesis against the gateway; fail with its report unless every check passed. Returns the
    request/response pairs it recorded."""
    config = folder / "schemathesis.toml"
    config.write_text(CONFIG)
    report = folder / "events.ndjson"
    command = [SCHEMATHESIS, "--config-file", str(config), "run", f"{gateway.url}/v1/openapi.json",
               "--checks", "all", "--exclude-checks", CHECKS_LEFT_OUT, "--max-examples", MAX_EXAMPLES,
               "--seed", SEED, "--workers", "1", "--request-timeout", "30", "--no-color",
               "--report", "ndjson", "--report-ndjson-path", str(report)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder)
    assert result.returncode == 0, f"Schemathesis found problems:\n{result.stdout[-20000:]}\n{result.stderr[-3000:]}"
    interactions = []
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            interactions += event["ScenarioFinished"]["recorder"].get("interactions", {}).values()
    cases = next((line.strip() for line in result.stdout.splitlines() if " generated" in line), "")
    print(f"fuzz ({'with' if headers else 'without'} a key): {cases}; {len(interactions)} requests recorded")
    return [item for item in interactions if item.get("response")]


def request_ids(interactions: list[dict]) -> dict[str, str]:
    """The x-request-id of every answer from the API → its method, path and status (the OpenAPI document
    and CORS preflights, which no key may be sent with, are no API calls)."""
    ids = {}
    for item in interactions:
        if item["request"]["uri"].endswith("/v1/openapi.json") or item["request"]["method"] == "OPTIONS":
            continue
        headers = {name.lower(): values for name, values in item["response"]["headers"].items()}
        assert "x-request-id" in headers, item
        ids[headers["x-request-id"][0]] = (f"{item['request']['method']} {item['request']['uri']} "
                                           f"→ {item['response']['status_code']}")
    return ids


def assert_every_request_settled(gateway, ids: dict[str, str]) -> None:
    def missing() -> list[str]:
        return [ids[rid] for rid in set(ids) - gateway.log_rows(ids)]

    wait_until(lambda: not missing(), 15, lambda: f"request-log rows of {missing()[:20]}")
    assert gateway.invariants() == []


@pytest.mark.timeout(900)
def test_fuzzing_with_a_valid_key_finds_no_5xx_and_nothing_off_schema(gateway, tmp_path):
    interactions = fuzz(gateway, tmp_path, {"Authorization": f"Bearer {gateway.key}"})
    statuses = [item["response"]["status_code"] for item in interactions]
    assert len(interactions) >= 300, len(interactions)
    assert statuses.count(200) >= 50, "the fuzzer should get past the checks to the upstream often"
    assert all(status < 500 for status in statuses)
    assert_every_request_settled(gateway, request_ids(interactions))


@pytest.mark.timeout(900)
def test_fuzzing_without_a_key_gets_401_everywhere_but_the_document(gateway, tmp_path):
    interactions = fuzz(gateway, tmp_path, {})
    refused = [item for item in interactions if not item["request"]["uri"].endswith("/v1/openapi.json")
               and item["request"]["method"] != "OPTIONS"]
    assert len(refused) >= 100, len(refused)
    statuses = {item["response"]["status_code"] for item in refused}
    assert statuses <= {401, 405}, statuses  # 405: a method the route does not have, answered before the key
    assert 401 in statuses
    assert_every_request_settled(gateway, request_ids(interactions))
