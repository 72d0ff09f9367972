"""Two processes, one PostgreSQL and one Redis: revocation, per-key limits and credit quotas hold for
the pair exactly as for one process."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from support.opskit import MODEL, admin_session, auth, create_key, query, submit_form

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def models_status(server, key: str) -> int:
    return requests.get(f"{server.url}/v1/models", headers=auth(key), timeout=10).status_code


def chat_status(server, key: str, content: str = "Hallo", max_tokens: int | None = None) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    answer = requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, timeout=30)
    return answer.status_code


def spread(cluster, key: str, count: int, **kwargs) -> list[int]:
    """count chat requests, alternating between the two servers, eight at a time."""
    servers = cluster.servers

    def one(i: int) -> int:
        return chat_status(servers[i % 2], key, f"Anfrage {i}", **kwargs)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def test_a_key_revoked_through_one_process_is_refused_by_the_other(cluster):
    key = create_key(cluster.a, "revoke-me")
    assert chat_status(cluster.b, key["key"]) == 200
    assert models_status(cluster.a, key["key"]) == 200

    admin = admin_session(cluster.a)
    answer = submit_form(admin, f"{cluster.a.url}/keys/{key['id']}/revoke")
    assert answer.status_code in (200, 302, 303), answer.text[:300]

    assert chat_status(cluster.b, key["key"]) == 401, "the very next request on the other process is refused"
    assert models_status(cluster.b, key["key"]) == 401
    assert models_status(cluster.a, key["key"]) == 401


def test_a_per_key_limit_holds_across_both_processes(cluster):
    limit = 10
    key = create_key(cluster.a, "limited", "--rph", str(limit))["key"]
    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    statuses = spread(cluster, key, 3 * limit)
    same_hour = hour == datetime.now(UTC).strftime("%Y%m%d%H")
    assert set(statuses) <= {200, 429}, statuses
    accepted = statuses.count(200)
    assert accepted <= (limit if same_hour else 2 * limit), f"{accepted} accepted with a limit of {limit}"
    if same_hour:
        assert accepted == limit, "the shared counter lets exactly the limit through"
        for server in cluster.servers:
            assert chat_status(server, key) == 429, "both processes refuse the next request"


def test_the_quota_invariant_holds_across_both_processes(cluster):
    key = create_key(cluster.a, "budget", "--quota", "1")
    statuses = spread(cluster, key["key"], 80, max_tokens=20)
    assert set(statuses) <= {200, 402}, statuses
    assert 200 in statuses and 402 in statuses, "the quota must run out within 80 requests"

    row = query(cluster.database_url, "SELECT id, quota_micro, used_micro, reserved_micro FROM api_keys "
                                      "WHERE public_id = :pid", pid=key["id"])[0]
    logs = query(cluster.database_url, "SELECT status, credits_micro FROM request_logs WHERE key_id = :kid",
                 kid=row["id"])
    charged = [entry["credits_micro"] for entry in logs if entry["status"] == 200]
    assert len(charged) == statuses.count(200), "every answered request has its log row"
    assert row["reserved_micro"] == 0, "every reservation was settled"
    assert row["used_micro"] == sum(entry["credits_micro"] for entry in logs), "used = sum of the log"
    assert row["used_micro"] <= row["quota_micro"] + max(charged), \
        "at most one request's cost beyond the quota, however the requests were spread"
    assert chat_status(cluster.b, key["key"], max_tokens=20) == 402
    assert chat_status(cluster.a, key["key"], max_tokens=20) == 402
