"""The server log: one line per API request with status, latency, key public id, model and request id;
never a key, a prompt or an answer; optionally JSON."""
from __future__ import annotations

import json
import re

import requests
from support.opskit import MODEL, post_chat, stream_chat

PROMPT = "Bitte fasse den Bescheid AZ-4711-geheim für Frau Mustermann zusammen"
WRONG_KEY = "sk-pf-ThisKeyDoesNotExistButLooksPlausible0123"


def make_traffic(server, key: str) -> dict:
    chat = post_chat(server, key, PROMPT)
    assert chat.status_code == 200
    stream = stream_chat(server, key, PROMPT)
    assert stream.status_code == 200
    assert b"[DONE]" in b"".join(stream.iter_content(None))
    refused = post_chat(server, WRONG_KEY, PROMPT)
    assert refused.status_code == 401
    failed = post_chat(server, key, "[fake status=503] " + PROMPT)
    assert failed.status_code >= 500
    answer_text = chat.json()["choices"][0]["message"]["content"]
    return {"chat": chat, "stream": stream, "refused": refused, "failed": failed, "answer": answer_text}


def stopped_log(server) -> str:
    server.stop()  # the log is complete once the process has exited
    return server.log_text()


def assert_no_secrets(log: str, key: str, answer: str) -> None:
    assert key not in log
    assert key[len("sk-pf-"):][:16] not in log  # not even the secret part of it
    assert WRONG_KEY not in log
    assert "AZ-4711" not in log and "Mustermann" not in log
    assert answer not in log


def test_plain_log_has_one_line_per_api_request_and_no_secrets(gateway):
    server, key_info = gateway()
    key = key_info["key"]
    traffic = make_traffic(server, key)
    log = stopped_log(server)
    assert_no_secrets(log, key, traffic["answer"])

    access = [line for line in log.splitlines() if " pforte.access " in line]
    for name in ("chat", "stream", "refused", "failed"):
        request_id = traffic[name].headers["x-request-id"]
        lines = [line for line in access if f"request_id={request_id}" in line]
        assert len(lines) == 1, f"{name}: expected one access line with {request_id}"
        line = lines[0]
        assert f"status={traffic[name].status_code}" in line
        assert "method=POST path=/v1/chat/completions" in line
        assert re.search(r"latency_ms=\d+(\.\d+)?", line)
        if name != "refused":
            assert f"model={MODEL}" in line
            assert f"key={key_info['id']} " in line
        else:
            assert "key=-" in line
    assert "stream=true" in next(line for line in access if traffic["stream"].headers["x-request-id"] in line)


def test_json_log_lines_parse_and_carry_the_request_facts(gateway):
    server, key_info = gateway(env={"PFORTE_LOG_JSON": "1"})
    traffic = make_traffic(server, key_info["key"])
    log = stopped_log(server)
    assert_no_secrets(log, key_info["key"], traffic["answer"])
    entries = []
    for line in log.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    by_id = {e.get("request_id"): e for e in entries if e.get("logger") == "pforte.access"}
    chat = by_id[traffic["chat"].headers["x-request-id"]]
    assert chat["status"] == 200 and chat["model"] == MODEL and chat["key"] == key_info["id"]
    assert chat["method"] == "POST" and chat["latency_ms"] >= 0
    failed = by_id[traffic["failed"].headers["x-request-id"]]
    assert failed["status"] == traffic["failed"].status_code and failed["error"].startswith("upstream_")
    assert any(e["message"].startswith("Pforte listening on") for e in entries)


def test_an_upstream_dying_mid_stream_logs_an_error_with_the_request_id(gateway):
    """The stream is read in a greenlet outside the request context; its error line still names the request."""
    server, key_info = gateway()
    stream = stream_chat(server, key_info["key"], "[fake die_after=3] " + PROMPT)
    assert stream.status_code == 200
    body = b"".join(stream.iter_content(None))
    assert b'"error"' in body  # one error frame ended the stream
    request_id = stream.headers["x-request-id"]
    log = stopped_log(server)
    errors = [line for line in log.splitlines() if " ERROR " in line and "pforte.access" not in line]
    assert any(f"request_id={request_id}" in line for line in errors), "\n".join(errors) or log[-2000:]
    assert "AZ-4711" not in log


def test_an_unexpected_failure_logs_its_traceback_with_the_request_id(gateway):
    """API requests are handled without Flask's request context; their error lines still name the request."""
    server, key_info = gateway(env={"PFORTE_TESTING_FAULTS": "1"})
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    failed = requests.post(f"{server.url}/v1/chat/completions", json=body, timeout=30, headers={
        "Authorization": f"Bearer {key_info['key']}", "x-pforte-test-fault": "internal"})
    assert failed.status_code == 500
    request_id = failed.headers["x-request-id"]
    log = stopped_log(server)
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert any(f"request_id={request_id}" in line for line in errors), "\n".join(errors) or log[-2000:]
    assert "InjectedFault" in log  # the traceback is in the server log (never in the answer)
    assert "InjectedFault" not in failed.text
    assert "AZ-4711" not in log
