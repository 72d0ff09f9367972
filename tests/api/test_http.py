"""HTTP details: credential headers, path aliases, CORS preflight, x-request-id everywhere."""
from __future__ import annotations

import json
import socket

import pytest
import requests

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway, headers: dict, path: str = "/v1/chat/completions") -> requests.Response:
    return requests.post(f"{gateway.url}{path}", json=CHAT, headers=headers, timeout=10)


@pytest.mark.parametrize("make_headers", [
    lambda key: {"Authorization": f"Bearer {key}"},
    lambda key: {"Authorization": f"bearer {key}"},
    lambda key: {"Authorization": f"BEARER   {key}"},
    lambda key: {"x-api-key": key},
    lambda key: {"api-key": key},
])
def test_credential_header_variants(gateway, make_headers):
    assert post(gateway, make_headers(gateway.key)).status_code == 200


def test_authorization_wins_over_other_headers(gateway):
    wrong = "sk-pf-" + "D" * 40
    assert post(gateway, {"Authorization": f"Bearer {gateway.key}", "x-api-key": wrong}).status_code == 200
    assert post(gateway, {"Authorization": f"Bearer {wrong}", "x-api-key": gateway.key}).status_code == 401


@pytest.mark.parametrize("path", [
    "/v1/chat/completions", "/chat/completions", "/v1/v1/chat/completions",
    "/api/openai-compat/v1/chat/completions", "/api/v1/chat/completions",
])
def test_path_aliases(gateway, path):
    response = post(gateway, {"Authorization": f"Bearer {gateway.key}"}, path)
    assert response.status_code == 200 and response.json()["model"] == "gpt-test"


@pytest.mark.parametrize("path", ["/models", "/v1/models", "/api/v1/models", "/api/openai-compat/v1/models"])
def test_models_aliases(gateway, path):
    response = requests.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {gateway.key}"}, timeout=5)
    assert response.status_code == 200 and response.json()["object"] == "list"


def test_cors_preflight(gateway):
    response = requests.options(f"{gateway.url}/v1/chat/completions", timeout=5, headers={
        "Origin": "https://intranet.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
    assert response.status_code == 204 and response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "x-request-id" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert response.headers["x-request-id"]


def test_cors_preflight_without_requested_headers_lists_them_explicitly(gateway):
    response = requests.options(f"{gateway.url}/v1/messages", timeout=5,
                                headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert response.status_code == 204
    assert "*" not in allowed
    for name in ("authorization", "x-api-key", "anthropic-version", "x-stainless-retry-count", "openai-project"):
        assert name in allowed


def test_answers_carry_cors_and_request_id_but_no_cookie(gateway):
    response = post(gateway, {"Authorization": f"Bearer {gateway.key}", "Origin": "https://intranet.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["x-request-id"].startswith("req_")
    assert "Set-Cookie" not in response.headers
    missing = requests.get(f"{gateway.url}/v1/unknown", timeout=5)
    assert missing.headers["x-request-id"]


def test_dispatched_and_fallback_answers_carry_the_same_api_headers(gateway):
    """The API routes are answered below Flask; HEAD, wrong methods and unknown paths by Flask. All carry
    the same API headers, and none sets a cookie."""
    auth = {"Authorization": f"Bearer {gateway.key}"}
    answers = {
        "dispatched": requests.get(f"{gateway.url}/v1/models", headers=auth, timeout=5),
        "head": requests.head(f"{gateway.url}/v1/models", headers=auth, timeout=5),
        "wrong method": requests.get(f"{gateway.url}/v1/chat/completions", headers=auth, timeout=5),
        "unknown": requests.post(f"{gateway.url}/v1/no-such-thing", headers=auth, timeout=5),
    }
    assert [answers[name].status_code for name in answers] == [200, 200, 405, 404]
    for name, response in answers.items():
        headers = response.headers
        assert headers["Access-Control-Allow-Origin"] == "*", name
        assert "x-request-id" in headers["Access-Control-Expose-Headers"], name
        assert headers["x-request-id"].startswith("req_"), name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "same-origin", name
        assert "Origin" in headers["Vary"], name
        assert "Set-Cookie" not in headers, name
    assert answers["wrong method"].json()["error"]["code"] == "method_not_allowed"
    assert answers["unknown"].json()["error"]["code"] == "unknown_url"


@pytest.mark.parametrize("path", ["/v1/models/", "/v1/chat/completions/", "/v1/modelsx"])
def test_near_miss_paths_are_json_404s(gateway, path):
    response = requests.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {gateway.key}"}, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("unknown_url", "model_not_found")


def test_model_id_with_non_ascii_characters_is_decoded(gateway):
    """A model id in the path is percent-decoded as UTF-8 (an unknown id is named in the 404)."""
    response = requests.get(f"{gateway.url}/v1/models/gr%C3%BC%C3%9Fe%2Fmodell",
                            headers={"Authorization": f"Bearer {gateway.key}"}, timeout=5)
    assert response.status_code == 404
    assert "grüße/modell" in response.json()["error"]["message"]


def test_calls_to_no_route_are_recorded_in_the_request_log(gateway):
    """Every API call leaves a request-log row, also an unknown path (404) and a wrong method (405)."""
    auth = {"Authorization": f"Bearer {gateway.key}"}
    unknown = requests.post(f"{gateway.url}/v1/files", headers=auth, timeout=5)
    wrong = requests.delete(f"{gateway.url}/v1/models/gpt-test", headers=auth, timeout=5)
    assert (unknown.status_code, wrong.status_code) == (404, 405)
    assert "GET" in wrong.headers["Allow"].split(", ")
    assert "X-RateLimit-Limit" in unknown.headers  # counted against the per-IP limit like any call
    rows = {name: gateway.log_row(response.headers["x-request-id"])
            for name, response in (("unknown", unknown), ("wrong", wrong))}
    assert rows["unknown"]["status"] == 404 and rows["unknown"]["error_code"] == "unknown_url"
    assert rows["wrong"]["status"] == 405 and rows["wrong"]["error_code"] == "method_not_allowed"
    for row in rows.values():
        assert row["endpoint"] == "other" and row["key_id"] is None and row["client_ip"] == "127.0.0.1"


def test_documents_that_share_the_api_prefix_still_reach_flask(gateway):
    """/v1/openapi.json is no API call (no JSON 401 or 404), and a doubled slash is still redirected."""
    spec = requests.get(f"{gateway.url}/v1/openapi.json", timeout=5)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    doubled = requests.get(f"{gateway.url}/v1//models", timeout=5, allow_redirects=False)
    assert doubled.status_code == 308 and doubled.headers["Location"].endswith("/v1/models")


def raw_exchange(gateway, request: bytes) -> bytes:
    """Send raw bytes to `pforte serve` and read the answer's head (the server closes or answers in time)."""
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


def raw_until_closed(gateway, request: bytes) -> bytes:
    """Send raw bytes and read everything the server sends until it closes the connection."""
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
        return answer


def test_repeated_request_headers_reach_the_gateway(gateway):
    body = json.dumps(CHAT).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer " + gateway.key.encode() + b"\r\nX-Dup: one\r\nX-Dup: two\r\n"
               b"Content-Length: %d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (len(body), len(body))
               ) + body
    assert raw_exchange(gateway, request).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("headers", [
    b"X-Long: " + b"a" * 70000 + b"\r\n",
    b"".join(b"X-Many-%d: v\r\n" % i for i in range(101)),
    b"this line has no colon\r\n",
])
def test_malformed_request_heads_are_refused_with_400(gateway, headers):
    request = b"GET /v1/models HTTP/1.1\r\nHost: pforte\r\n" + headers + b"\r\n"
    assert raw_exchange(gateway, request).startswith(b"HTTP/1.1 400 ")


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: pforte\r\n\r\n"


@pytest.mark.parametrize("framing", [
    pytest.param(b"Content-Length : %d\r\n", id="space before the colon"),
    pytest.param(b"Content-Length\t: %d\r\n", id="tab before the colon"),
    pytest.param(b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n", id="chunked and a length"),
    pytest.param(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", id="a length and chunked"),
    pytest.param(b"Content-Length: %d\r\nContent-Length: 0\r\n", id="conflicting lengths"),
    pytest.param(b"Content-Length: %d, 0\r\n", id="conflicting lengths in one line"),
    pytest.param(b"Content-Length: +%d\r\n", id="a signed length"),
    pytest.param(b"Content-Length: 0_%d\r\n", id="a length with an underscore"),
    pytest.param(b"Content-Length: %d\r\nX-Folded: first part\r\n second part\r\n", id="folded line"),
    pytest.param(b"Content-Length: %d\r\nX-Folded: first part\r\n\tsecond part\r\n", id="folded with a tab"),
    pytest.param(b"Content-Length: %d\r\nX-Bare: one\rtwo\r\n", id="bare CR in a value"),
    pytest.param(b"Content-Length: %d\r\nX-Nul: one\x00two\r\n", id="NUL in a value"),
    pytest.param(b"Content-Length: %d\r\nX Space: v\r\n", id="space in a name"),
    pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n",
                 id="doubled transfer-encoding and a length"),
    pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", id="doubled transfer-encoding"),
    pytest.param(b"Transfer-Encoding: gzip, chunked\r\n", id="a coding before chunked"),
    pytest.param(b"Transfer-Encoding: chunked, chunked\r\n", id="chunked twice in one line"),
])
def test_ambiguous_request_framing_is_refused_with_400_and_the_connection_closed(gateway, framing):
    """RFC 9112: a message whose length a proxy could read differently is refused, and the connection is
    closed, so that a request hidden in its body (here GET /healthz) is never answered."""
    body = b"{}" if b"chunked" not in framing else b"2\r\n{}\r\n0\r\n\r\n"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + gateway.key.encode() + b"\r\n")
    framed = framing % len(body) if b"%d" in framing else framing
    answer = raw_until_closed(gateway, head + framed + b"\r\n" + body + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, "the connection must close after the 400"


def test_a_well_framed_request_keeps_the_connection_for_the_next(gateway):
    """The counterpart of the refusals above: the same bytes with clean framing are answered, and the
    request after the body on the same connection is answered too."""
    body = b"{}"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: pforte\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + gateway.key.encode() + b"\r\nContent-Length: 2\r\n\r\n")
    answer = raw_until_closed(gateway, head + body + SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 400 ")  # {} has no model: the gateway's own JSON 400
    assert b"model" in answer
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 200 " in answer
