"""The transport's one retry (issue 3 item 5): a kept-alive upstream connection that the upstream closed
before answering is retried once on a fresh connection, without the client seeing an error; nothing is
retried once response bytes have arrived."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from api_helpers import user
from upstream_variants import closing_upstream_fixture, dropping_upstream_fixture  # noqa: F401


def chat(gateway, model: str, text: str = "hi", stream: bool = False):
    return gateway.post("/v1/chat/completions", {"model": model, "messages": user(text), "stream": stream})


def test_connections_closed_silently_by_the_upstream_are_retried(gateway, dropping_upstream):
    dropping_upstream.reset()
    statuses = [chat(gateway, "drop-test", stream=index % 5 == 4).status_code for index in range(50)]
    assert statuses == [200] * 50
    stats = dropping_upstream.stats()
    assert stats["by_path"]["/v1/chat/completions"] == 50  # every request answered exactly once
    assert stats["dropped"] >= 45  # nearly every request first met a connection the upstream then closed


def test_retry_with_many_stale_connections_in_the_pool(gateway, dropping_upstream):
    """Concurrent requests leave several idle connections, all of which the upstream closes on their next
    request; the retry must not pick another stale one."""
    dropping_upstream.reset()
    client = gateway.client()

    def one(index: int) -> str:
        return client.chat.completions.create(model="drop-test", messages=user(f"hi {index}")).choices[0] \
            .finish_reason

    with ThreadPoolExecutor(8) as pool:
        for _round in range(4):
            assert list(pool.map(one, range(16))) == ["stop"] * 16
    stats = dropping_upstream.stats()
    assert stats["by_path"]["/v1/chat/completions"] == 64 and stats["dropped"] > 0


def test_connections_closed_with_notice_are_not_reused(gateway, closing_upstream):
    closing_upstream.reset()
    statuses = [chat(gateway, "mrpc-test", stream=index % 5 == 4).status_code for index in range(50)]
    assert statuses == [200] * 50
    stats = closing_upstream.stats()
    assert stats["by_path"]["/v1/chat/completions"] == 50 and stats["connections"] == 51  # and /stats


def test_close_directive_on_the_shared_upstream(gateway):
    statuses = [chat(gateway, "gpt-test", "[fake close] hi" if index % 2 else "hi").status_code
                for index in range(20)]
    assert statuses == [200] * 20


def upstream_hits(gateway, marker: str) -> int:
    return sum(marker in str(r["json"]) for r in gateway.upstream_stats()["recent"])


def test_a_stream_that_dies_after_some_chunks_is_not_retried(gateway, client):
    marker = uuid.uuid4().hex
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="gpt-test", messages=user(f"[fake die_after=3] {marker}"),
                                                    stream=True):
            received.append(chunk)
    assert caught.value.code == "upstream_error"
    assert len(received) == 3
    assert upstream_hits(gateway, marker) == 1


def test_a_body_cut_off_is_not_retried(gateway):
    marker = uuid.uuid4().hex
    response = chat(gateway, "gpt-test", f"[fake cut_body] {marker}")
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error"
    assert upstream_hits(gateway, marker) == 1
