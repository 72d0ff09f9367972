"""/metrics after real traffic: a live `pforte serve`, the openai SDK against the fake upstream, then the
exposition shows what happened — requests by status and model, latency and time-to-first-byte
histograms that grew, no stream left open, and an upstream error after the upstream answered 5xx."""
from __future__ import annotations

import openai
import pytest
import requests
from support.opskit import MODEL, parse_exposition
from support.waiting import wait_until

ENDPOINT = "chat"


def scrape(server) -> dict[tuple[str, frozenset], float]:
    answer = requests.get(f"{server.url}/metrics", timeout=10)
    assert answer.status_code == 200
    return parse_exposition(answer.text)


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_with(samples: dict, status: int) -> float:
    return sample(samples, "pforte_requests_total", endpoint=ENDPOINT, model=MODEL, status=str(status))


def scrape_until(server, condition, timeout: float = 10.0) -> dict:
    """The request's numbers land when the server is done sending; poll until they are there."""

    def scraped() -> dict | None:
        samples = scrape(server)
        return samples if condition(samples) else None

    return wait_until(scraped, timeout, f"the numbers on {server.url}/metrics")


def test_metrics_follow_real_sdk_traffic(gateway):
    server, key_info = gateway()
    client = openai.OpenAI(api_key=key_info["key"], base_url=f"{server.url}/v1", max_retries=0, timeout=30)
    before = scrape(server)

    chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hallo"}])
    assert chat.choices[0].message.content
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hallo"}],
                                            stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces)

    after = scrape_until(server, lambda s: requests_with(s, 200) - requests_with(before, 200) >= 2)
    assert requests_with(after, 200) - requests_with(before, 200) == 2
    for histogram in ("pforte_request_duration_seconds_count", "pforte_time_to_first_byte_seconds_count"):
        grew = sample(after, histogram, endpoint=ENDPOINT, model=MODEL) - sample(before, histogram,
                                                                                 endpoint=ENDPOINT, model=MODEL)
        assert grew == 2, histogram
    latency_sum = ("pforte_request_duration_seconds_sum", frozenset({("endpoint", ENDPOINT), ("model", MODEL)}))
    assert after[latency_sum] > before.get(latency_sum, 0.0)
    assert sample(after, "pforte_open_streams") == 0, "the finished stream is no longer counted as open"

    # The upstream answers 503: the client sees a 5xx, and the upstream error counter goes up.
    errors_before = sum(v for (name, _), v in after.items() if name == "pforte_upstream_errors_total")
    with pytest.raises(openai.APIStatusError) as failure:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "[fake status=503] x"}])
    status = failure.value.status_code
    assert status >= 500

    def counted(samples):
        return requests_with(samples, status) - requests_with(after, status) >= 1

    final = scrape_until(server, counted)
    assert requests_with(final, status) - requests_with(after, status) == 1
    errors = {labels: v for (name, labels), v in final.items() if name == "pforte_upstream_errors_total"}
    assert sum(errors.values()) - errors_before == 1, errors
    assert sample(final, "pforte_open_streams") == 0
