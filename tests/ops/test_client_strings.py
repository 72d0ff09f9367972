"""Strings a client chooses never stay for good: an unknown `model` becomes the label `unknown` in the metrics
and the monthly totals (so that neither grows with what clients send), a model name over 256 characters is a
400, the settlement of an odd name still writes its row (PostgreSQL too: run with PFORTE_TEST_DATABASE_URL),
and the access log caps and escapes what the client sent (no forged lines, no terminal escapes)."""
from __future__ import annotations

import json
import random
import string

import requests
from support.opskit import MODEL, auth, parse_exposition, post_chat, query
from support.waiting import wait_until


def post_model(server, key: str, model: str) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hallo"}]}
    return requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, timeout=30)


def random_name(length: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits + "-./:", k=length))


def rows_for(server, request_ids: list[str]) -> list[dict]:
    rows = query(server, "SELECT request_id, model, status FROM request_logs")
    return [row for row in rows if row["request_id"] in set(request_ids)]


def test_unknown_model_names_leave_the_metrics_and_monthly_rows_bounded(gateway):
    server, key_info = gateway(env={"PFORTE_RATELIMIT_PER_IP": "100000/minute"})
    key = key_info["key"]
    assert post_chat(server, key, "Hallo").status_code == 200
    ids = []
    for _ in range(300):
        answer = post_model(server, key, random_name(250))
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "model_not_found"
        ids.append(answer.headers["x-request-id"])

    wait_until(lambda: len(rows_for(server, ids)) == len(ids), 20, "every refused request settled")
    monthly = query(server, "SELECT model, requests, errors FROM usage_monthly WHERE key_id = :key",
                    key=_key_id(server, key_info))
    by_model = {row["model"]: row for row in monthly if row["model"]}  # "": GET /v1/models
    assert set(by_model) == {MODEL, "unknown"}, sorted(by_model)[:5]
    assert by_model["unknown"]["requests"] == 300 and by_model["unknown"]["errors"] == 300

    def scraped():
        answer = requests.get(f"{server.url}/metrics", timeout=10)
        samples = parse_exposition(answer.text)
        total = sum(v for (name, labels), v in samples.items()
                    if name == "pforte_requests_total" and ("model", "unknown") in labels)
        return (answer, samples) if total >= 300 else None

    answer, samples = wait_until(scraped, 20, "the refused requests counted under model=unknown")
    models = {value for (_name, labels) in samples for label, value in labels if label == "model"}
    assert models <= {MODEL, "unknown", ""}, sorted(models)[:5]
    assert len(answer.content) < 64 * 1024, len(answer.content)


def _key_id(server, key_info) -> int:
    rows = query(server, "SELECT id FROM api_keys WHERE public_id = :public", public=key_info["id"])
    return rows[0]["id"]


def test_a_model_name_over_256_characters_is_a_400_and_still_settled(gateway):
    server, key_info = gateway()
    key = key_info["key"]
    ids = []
    for length in (257, 4000):
        answer = post_model(server, key, random_name(length))
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "model"
        assert "256" in error["message"]
        ids.append(answer.headers["x-request-id"])
    rows = wait_until(lambda: (r := rows_for(server, ids)) and len(r) == 2 and r, 20, "both requests settled")
    assert {row["status"] for row in rows} == {400}
    assert all(len(row["model"]) <= 200 for row in rows)
    monthly = query(server, "SELECT model FROM usage_monthly WHERE key_id = :key", key=_key_id(server, key_info))
    assert {row["model"] for row in monthly} - {""} == {"unknown"}  # "": GET /v1/models


def test_odd_model_names_are_settled_whatever_the_database(gateway):
    """Names PostgreSQL would refuse as they are (NUL, longer than the 200-character column) still get
    their request-log row and count under `unknown`."""
    server, key_info = gateway()
    key = key_info["key"]
    # A lone surrogate is not valid Unicode: the whole body is refused (400), and still has its row.
    names = {"a\x00b": 404, "ü" * 256: 404, "x" * 201 + "\x00": 404, "\ud7ff" * 100: 404, "\ud800x": 400}
    ids = []
    for name, status in names.items():
        answer = post_model(server, key, name)
        assert answer.status_code == status, answer.text
        ids.append(answer.headers["x-request-id"])
    rows = wait_until(lambda: (r := rows_for(server, ids)) and len(r) == len(ids) and r, 20, "every row")
    for row in rows:
        assert "\x00" not in (row["model"] or "") and len(row["model"] or "") <= 200
    monthly = query(server, "SELECT model FROM usage_monthly WHERE key_id = :key", key=_key_id(server, key_info))
    assert {row["model"] for row in monthly} - {""} == {"unknown"}  # "": GET /v1/models


def test_the_access_log_caps_and_escapes_client_strings(gateway):
    server, key_info = gateway()
    key = key_info["key"]
    forged = "evil\r\n2026-01-01 00:00:00 INFO pforte.access request status=200 forged=yes\x1b[31m\x07"
    ids = [post_model(server, key, forged).headers["x-request-id"],
           post_model(server, key, "m" * 256).headers["x-request-id"],
           requests.get(f"{server.url}/v1/{'p' * 3000}\x1b[2J", headers=auth(key), timeout=10).headers[
               "x-request-id"]]
    server.stop()
    log = server.log_text()
    assert "\x1b" not in log and "\x07" not in log and "\r" not in log
    lines = [line for line in log.splitlines() if " pforte.access " in line]
    assert not any("forged=yes" in line and "request_id=" not in line for line in lines)
    for request_id in ids:
        matching = [line for line in lines if f"request_id={request_id}" in line]
        assert len(matching) == 1, request_id
        assert len(matching[0]) < 600, matching[0][:200]
    first = next(line for line in lines if f"request_id={ids[0]}" in line)
    assert "model=" in first and json.dumps("evil")[:-1] in first  # the name is there, quoted and escaped


def test_json_log_lines_stay_one_line_each_with_capped_client_strings(gateway):
    server, key_info = gateway(env={"PFORTE_LOG_JSON": "1"})
    name = "evil\r\n{\"level\": \"forged\"}\x1b[31m" + "n" * 300
    request_id = post_model(server, key_info["key"], name[:256]).headers["x-request-id"]
    server.stop()
    entries = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    assert not any(entry.get("level") == "forged" for entry in entries)
    access = [e for e in entries if e.get("logger") == "pforte.access" and e.get("request_id") == request_id]
    assert len(access) == 1
    model = access[0]["model"]
    assert model.startswith("evil{") and len(model) <= 120 and "\x1b" not in model and "\n" not in model
