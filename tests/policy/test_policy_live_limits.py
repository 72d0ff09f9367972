"""Rate limits, their headers, the concurrency cap and the credit invariants on live gateways: once with
memory:// in one process, once with Redis shared by two processes (requests alternate between them)."""
from __future__ import annotations

import calendar
import json
import random
import re
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from support.waiting import wait_until

pytestmark = pytest.mark.slow

PRICED_INPUT, PRICED_OUTPUT = 100, 1000  # the model "priced" (tests/policy/conftest.py)


def error_of(response) -> dict:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def assert_rate_limited(response, now: float | None = None) -> dict:
    """A DESIGN §6 429: type, code, retry-after header in whole seconds ≤ 60 and the same in the body."""
    assert response.status_code == 429, response.text
    error = error_of(response)
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert re.fullmatch(r"[1-9][0-9]?", response.headers["retry-after"])
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= 60 and error["retry_after"] == retry
    return error


def next_month_start(now: float) -> int:
    day = datetime.fromtimestamp(now, UTC)
    return calendar.timegm((day.year + day.month // 12, day.month % 12 + 1, 1, 0, 0, 0))


def seconds_of(duration: str) -> int:
    """'1h2m3s' → 3723 (x-ratelimit-reset-requests)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+)s", duration)
    assert match, duration
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


# --- the per-IP limit ----------------------------------------------------------------------------------

def test_per_ip_limit_60th_passes_61st_is_refused(limits_gateway, client_ip, new_ip, fresh_window):
    key = limits_gateway.create_key()["key"]
    fresh_window(60, 20)
    answers = [limits_gateway.models(key, ip=client_ip) for _ in range(60)]
    assert [a.status_code for a in answers] == [200] * 60
    assert [int(a.headers["X-RateLimit-Remaining"]) for a in answers] == list(range(59, -1, -1))
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"60"}
    assert {a.headers["X-RateLimit-Window"] for a in answers} == {"60"}
    refused = limits_gateway.models(key, ip=client_ip)
    now = time.time()
    error = assert_rate_limited(refused)
    assert "IP address" in error["message"] and "60 per minute" in error["message"]
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert reset % 60 == 0 and 0 < reset - now <= 60
    assert abs(int(refused.headers["retry-after"]) - (reset - now)) <= 1.5
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Another address, and the same key, are not affected.
    assert limits_gateway.models(key, ip=new_ip()).status_code == 200


def test_per_ip_limit_counts_calls_with_bad_keys_and_refused_addresses(small_ip_limit_gateway, client_ip, new_ip,
                                                                      fresh_window):
    """Every API call counts against the per-IP limit, whatever its key: someone guessing keys is limited too.
    Missing, malformed and well-formed unknown keys (401) and a key whose allow list refuses the address (403)
    use up the address's requests; then a good key from that address is refused as well, not from another."""
    from app.keys.secrets import generate_key

    gateway = small_ip_limit_gateway
    per_ip = gateway.per_ip
    good = gateway.create_key()["key"]
    fenced = gateway.create_key("--allow-ip", "192.0.2.0/24")["key"]
    fresh_window(60, 20)
    answers = [
        requests.get(f"{gateway.next_url()}/v1/models", headers={"X-Forwarded-For": client_ip}, timeout=30),
        gateway.models("sk-pf-not-a-key", ip=client_ip),
        gateway.chat(generate_key("sk-pf-"), ip=client_ip),
        gateway.models(fenced, ip=client_ip),
        gateway.chat(fenced, ip=client_ip),
    ]
    assert len(answers) == per_ip
    assert [a.status_code for a in answers] == [401, 401, 401, 403, 403]
    assert [error_of(a)["code"] for a in answers[:3]] == ["invalid_api_key"] * 3
    assert [int(a.headers["X-RateLimit-Remaining"]) for a in answers] == list(range(per_ip - 1, -1, -1))
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {str(per_ip)}
    assert {a.headers["X-RateLimit-Window"] for a in answers} == {"60"}

    guessed = gateway.chat(generate_key("sk-pf-"), ip=client_ip)
    error = assert_rate_limited(guessed)
    assert "IP address" in error["message"] and guessed.headers["X-RateLimit-Remaining"] == "0"
    upstream_before = gateway.upstream_requests()
    for response in (gateway.models(good, ip=client_ip), gateway.chat(good, "priced", ip=client_ip)):
        assert "IP address" in assert_rate_limited(response)["message"]
    assert gateway.upstream_requests() == upstream_before

    other = new_ip()
    assert gateway.chat(good, ip=other).status_code == 200
    assert gateway.models("sk-pf-not-a-key", ip=other).status_code == 401


def test_headers_combine_the_per_ip_and_the_key_limits(small_ip_limit_gateway, client_ip, fresh_window):
    """With the per-IP limit counted before the key's, the headers still describe the tightest window."""
    gateway = small_ip_limit_gateway
    key = gateway.create_key("--rpm", "3")["key"]
    fresh_window(60, 20)
    first = gateway.models(key, ip=client_ip)
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("3", "2")
    gateway.models(key, ip=client_ip)
    gateway.models(key, ip=client_ip)
    refused = gateway.models(key, ip=client_ip)  # the key's minute is full (the address: 4 of 5)
    assert "3 requests per minute" in assert_rate_limited(refused)["message"]
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"]) == ("3", "0")
    # The refused request has counted for the address: a bad key takes its last request, and the headers
    # (the per-IP window only, the key being unknown) say so.
    bad = gateway.models("sk-pf-not-a-key", ip=client_ip)
    assert bad.status_code == 401
    assert (bad.headers["X-RateLimit-Limit"], bad.headers["X-RateLimit-Remaining"]) == (str(gateway.per_ip), "0")
    last = gateway.models(key, ip=client_ip)
    assert "IP address" in assert_rate_limited(last)["message"]
    assert last.headers["X-RateLimit-Limit"] == str(gateway.per_ip)


# --- the key's request limits ----------------------------------------------------------------------------

def test_key_rpm_60th_passes_61st_is_refused(limits_gateway, new_ip, fresh_window):
    key = limits_gateway.create_key("--rpm", "60")["key"]
    fresh_window(60, 20)
    # A new address for every request: the per-IP limit (also 60) never interferes.
    answers = [limits_gateway.models(key, ip=new_ip()) for _ in range(60)]
    assert [a.status_code for a in answers] == [200] * 60
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"
    refused = limits_gateway.models(key, ip=new_ip())
    error = assert_rate_limited(refused)
    assert "60 requests per minute" in error["message"]
    assert "x-should-retry" not in refused.headers  # a minute's limit: retrying after retry-after helps
    other = limits_gateway.create_key("--rpm", "60")["key"]
    assert limits_gateway.models(other, ip=new_ip()).status_code == 200


def test_rpm_counts_every_endpoint_and_answer(limits_gateway, new_ip, fresh_window):
    key = limits_gateway.create_key("--rpm", "3")["key"]
    fresh_window(60, 20)
    assert limits_gateway.chat(key, "demo", ip=new_ip()).status_code == 200
    assert limits_gateway.models(key, ip=new_ip()).status_code == 200
    assert limits_gateway.chat(key, "no-such-model", ip=new_ip()).status_code == 404  # it came in: it counts
    for _ in range(3):
        error = assert_rate_limited(limits_gateway.models(key, ip=new_ip()))
        assert "3 requests per minute" in error["message"]


def test_headers_follow_the_tightest_limit_and_warn_from_80_percent(limits_gateway, new_ip):
    key = limits_gateway.create_key("--rpm", "30", "--rph", "100", "--monthly-requests", "5")["key"]
    answers = []
    for _ in range(5):
        answers.append(limits_gateway.models(key, ip=new_ip()))
    now = time.time()
    reset = next_month_start(now)
    month_start = calendar.timegm((datetime.fromtimestamp(now, UTC).year,
                                   datetime.fromtimestamp(now, UTC).month, 1, 0, 0, 0))
    for index, answer in enumerate(answers):
        assert answer.status_code == 200
        headers = answer.headers
        assert headers["X-RateLimit-Limit"] == headers["x-ratelimit-limit-requests"] == "5"
        assert headers["X-RateLimit-Remaining"] == headers["x-ratelimit-remaining-requests"] == str(4 - index)
        assert headers["X-RateLimit-Reset"] == str(reset)
        assert headers["X-RateLimit-Window"] == str(reset - month_start)
        assert abs(seconds_of(headers["x-ratelimit-reset-requests"]) - (reset - now)) <= 5
        # 4 of 5 is 80 %.
        assert headers.get("X-RateLimit-Warning") == ("approaching-limit" if index >= 3 else None)
    refused = limits_gateway.models(key, ip=new_ip())
    error = assert_rate_limited(refused)
    assert refused.headers["retry-after"] == "60"  # the month lasts longer; never above 60
    assert refused.headers["x-should-retry"] == "false"  # so retrying after 60 s cannot help
    assert "per month" in error["message"] and "next month" in error["message"]
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Warning"] == "approaching-limit"


def test_sdk_does_not_retry_a_used_up_monthly_limit(limits_gateway, new_ip):
    """The official SDK retries a 429 after retry-after unless told not to: for a used-up monthly limit the
    gateway says x-should-retry: false, so the SDK gives up at once and the gateway sees one attempt."""
    import openai

    created = limits_gateway.create_key("--monthly-requests", "1")
    ip = new_ip()
    client = openai.OpenAI(base_url=f"{limits_gateway.url}/v1", api_key=created["key"], max_retries=2,
                           default_headers={"X-Forwarded-For": ip})
    client.models.list()
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as refused:
        client.models.list()
    assert time.monotonic() - started < 10
    assert refused.value.response.headers["x-should-retry"] == "false"
    rows = limits_gateway.query("SELECT status FROM request_logs WHERE key_id = :id ORDER BY id",
                                id=created["row_id"])
    assert [row["status"] for row in rows] == [200, 429]


def test_every_api_response_a_limit_applies_to_has_the_headers(limits_gateway, client_ip):
    key = limits_gateway.create_key()["key"]  # only the per-IP limit applies
    for response in (limits_gateway.models(key, ip=client_ip),
                     limits_gateway.chat(key, "demo", ip=client_ip),
                     limits_gateway.chat(key, "no-such-model", ip=client_ip),
                     limits_gateway.request("POST", "/v1/chat/completions", key, {"model": "demo"},
                                            ip=client_ip)):
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window",
                     "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                     "x-ratelimit-reset-requests"):
            assert name in response.headers, (response.status_code, name)
    assert "X-RateLimit-Warning" not in response.headers


def test_browsers_may_read_the_rate_limit_headers(limits_gateway, new_ip):
    """CORS: every rate-limit header on an answer, and retry-after, is in Access-Control-Expose-Headers."""
    key = limits_gateway.create_key("--monthly-requests", "1")["key"]
    origin = {"Origin": "https://app.example"}
    admitted = limits_gateway.models(key, ip=new_ip(), headers=origin)
    refused = limits_gateway.models(key, ip=new_ip(), headers=origin)
    assert admitted.status_code == 200 and refused.status_code == 429
    assert admitted.headers["X-RateLimit-Warning"] == "approaching-limit"
    for response in (admitted, refused):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
        limit_headers = {name.lower() for name in response.headers
                         if name.lower().startswith("x-ratelimit") or name.lower() == "retry-after"}
        assert len(limit_headers) >= 7
        assert limit_headers <= exposed, limit_headers - exposed
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-window",
            "x-ratelimit-warning", "retry-after"} <= exposed


# --- concurrency -------------------------------------------------------------------------------------------

def run_together(count: int, work) -> list:
    """Run work(i) in `count` threads released at the same moment; results in order."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def worker(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_max_concurrent_requests(limits_gateway, new_ip):
    key = limits_gateway.create_key("--max-concurrent", "3")["key"]
    urls = [server.url for server in limits_gateway.servers]
    ips = [new_ip() for _ in range(10)]

    def call(i):
        return limits_gateway.chat(key, "priced", "[fake first_byte_delay=3]", ip=ips[i],
                                   url=urls[i % len(urls)], extra={"max_tokens": 5})

    answers = run_together(10, call)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 3 + [429] * 7
    for answer in answers:
        if answer.status_code == 429:
            error = assert_rate_limited(answer)
            assert answer.headers["retry-after"] == "1"
            assert "at most 3 at a time" in error["message"]
    # All slots are free again.
    again = run_together(3, lambda i: limits_gateway.chat(key, "demo", ip=ips[i], url=urls[i % len(urls)]))
    assert [a.status_code for a in again] == [200] * 3


def test_credit_invariants_with_100_concurrent_requests_and_streams(limits_gateway, new_ip):
    """100 clients within four seconds against a small quota: half stream, a third of the streams hang up
    after three chunks. Afterwards the key's used credits equal the sum of its request-log rows, nothing
    stays reserved, no request was admitted after the used credits had passed the quota (so the quota was
    exceeded by at most what the requests then in flight cost), refused requests never reached upstream and
    the clients that hung up paid for what upstream had produced."""
    quota = 1_000_000
    created = limits_gateway.create_key("--quota", "1")
    key, row_id = created["key"], created["row_id"]
    urls = [server.url for server in limits_gateway.servers]
    upstream_before = limits_gateway.upstream_requests()
    max_tokens = 24  # the fake upstream answers 20 chunks: the real cost comes close to the worst case
    rng = random.Random(4)
    plans = []
    for i in range(100):
        stream = i % 2 == 0
        hang_up = stream and i % 6 == 0
        content = "[fake chunks=20 chunk_delay=0.05] " + "word " * rng.randint(1, 60)
        body = {"model": "priced", "messages": [{"role": "user", "content": content}],
                "max_tokens": max_tokens, "stream": stream}
        plans.append((json.dumps(body).encode(), stream, hang_up, new_ip(), rng.uniform(0, 4)))

    def client(i):
        data, stream, hang_up, ip, delay = plans[i]
        time.sleep(delay)  # spread the arrivals over 4 s (load shape, not synchronisation)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "X-Forwarded-For": ip}
        with requests.Session() as session:
            response = session.post(f"{urls[i % len(urls)]}/v1/chat/completions", data=data, headers=headers,
                                    stream=stream, timeout=60)
            if not stream or response.status_code != 200:
                return response.status_code, dict(response.headers)
            chunks = 0
            for line in response.iter_lines():
                if line.startswith(b"data: {"):
                    chunks += 1
                    if hang_up and chunks == 3:
                        response.close()
                        return "hung-up", {}
            return 200, dict(response.headers)

    results = run_together(100, client)
    outcomes = [status for status, _headers in results]
    unexpected = [(status, headers) for status, headers in results if status not in (200, 402, "hung-up")]
    assert not unexpected, (unexpected, [server.log_text()[-6000:] for server in limits_gateway.servers])
    assert outcomes.count(402) > 0 and outcomes.count(200) > 0
    assert all(headers["x-should-retry"] == "false" for status, headers in results if status == 402)

    # Every request leaves one log row, also those that hung up (settled when the gateway notices).
    def settled() -> tuple[list, dict] | None:
        rows = limits_gateway.query(
            "SELECT id, status, error_code, input_tokens, output_tokens, credits_micro, created_at, "
            "latency_ms FROM request_logs WHERE key_id = :id ORDER BY id", id=row_id)
        row = limits_gateway.key_row(row_id)
        return (rows, row) if len(rows) == 100 and row["reserved_micro"] == 0 else None

    rows, row = wait_until(settled, 60, "100 log rows and no reservation left", interval=0.1)

    assert row["used_micro"] == sum(r["credits_micro"] for r in rows)
    for log in rows:
        assert log["credits_micro"] == round(log["input_tokens"] * PRICED_INPUT
                                             + log["output_tokens"] * PRICED_OUTPUT)
    admitted = [r for r in rows if r["status"] != 402]
    total, crossing = 0, None
    for log in admitted:
        total += log["credits_micro"]
        if total > quota:
            crossing = log
            break
    if crossing is not None:  # nothing admitted after the quota was passed
        crossed_at = as_epoch(crossing["created_at"])
        for log in admitted:
            if log["id"] > crossing["id"]:
                assert as_epoch(log["created_at"]) - log["latency_ms"] / 1000 <= crossed_at + 0.05
    gone = [r for r in rows if r["error_code"] == "client_disconnected"]
    assert len(gone) == outcomes.count("hung-up") > 0
    for log in gone:
        assert log["status"] == 499
        assert 3 <= log["output_tokens"] <= 20 and log["credits_micro"] > 0
    refused = [r for r in rows if r["status"] == 402]
    assert len(refused) == outcomes.count(402) and all(r["credits_micro"] == 0 for r in refused)
    # Refused requests were never forwarded.
    assert limits_gateway.upstream_requests() - upstream_before == 100 - len(refused)
    print(f"[{limits_gateway.kind}] 200: {outcomes.count(200)}, 402: {len(refused)}, hung up: {len(gone)}, "
          f"used {row['used_micro']} of {quota}, crossed: {crossing is not None}")


def as_epoch(value) -> float:
    """A stored naive-UTC timestamp (datetime, or text from SQLite) as epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()


# --- the owner's settings on the live gateway --------------------------------------------------------------

OWNER_PASSWORD = "owner-password-1"


def owner_session(gateway) -> requests.Session:
    """An owner (made once per gateway with the real CLI), logged in through the real login form."""
    if getattr(gateway, "owner_session", None) is not None:
        return gateway.owner_session
    gateway.cli("users", "create", "--username", "owner", "--role", "owner", "--password-stdin",
                input=OWNER_PASSWORD + "\n")
    session = requests.Session()
    session.post(f"{gateway.url}/login", data={"csrf_token": page_token(session, f"{gateway.url}/login"),
                                               "username": "owner", "password": OWNER_PASSWORD},
                 allow_redirects=False).raise_for_status()
    gateway.owner_session = session
    return session


def page_token(session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url, timeout=10).text).group(1)


def save_settings(session, gateway, allowance: str = "", per_ip_count: str = "", per_ip_unit: str = "minute"):
    url = f"{gateway.url}/settings"
    response = session.post(url, data={"csrf_token": page_token(session, url), "allowance": allowance,
                                       "per_ip_count": per_ip_count, "per_ip_unit": per_ip_unit},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text


def test_owner_settings_reach_every_process_and_windows_roll_over(limits_gateway, new_ip):
    """The owner sets 2 requests per second per IP on the settings page; every process applies it (within the
    settings cache time); a window fills, refuses, and opens again at the next full second."""
    session = owner_session(limits_gateway)
    key = limits_gateway.create_key()["key"]
    save_settings(session, limits_gateway, per_ip_count="2", per_ip_unit="second")
    try:
        for server in limits_gateway.servers:
            wait_until(lambda url=server.url: limits_gateway.models(key, ip=new_ip(), url=url)
                       .headers["X-RateLimit-Limit"] == "2", 20, f"the new per-IP limit on {server.url}", 0.2)
        ip = new_ip()
        admitted: list[int] = []
        for _ in range(20):
            response = limits_gateway.models(key, ip=ip)
            if response.status_code != 200:
                break
            admitted.append(int(response.headers["X-RateLimit-Reset"]))
        error = assert_rate_limited(response)
        assert "2 per second" in error["message"] and response.headers["retry-after"] == "1"
        reset = int(response.headers["X-RateLimit-Reset"])
        assert admitted.count(reset) == 2  # exactly the limit inside the refused window
        while time.time() < reset:  # wait for the clock to reach the window's end
            time.sleep(0.01)
        fresh = limits_gateway.models(key, ip=ip)
        assert fresh.status_code == 200
        assert int(fresh.headers["X-RateLimit-Reset"]) >= reset + 1
        assert fresh.headers["X-RateLimit-Window"] == "1"
    finally:
        save_settings(session, limits_gateway)


def test_owner_allowance_is_enforced_and_booked(limits_gateway, new_ip):
    session = owner_session(limits_gateway)
    key = limits_gateway.create_key()["key"]  # no key quota: only the allowance limits it
    month = datetime.now(UTC).strftime("%Y-%m")
    month_total = "SELECT COALESCE(SUM(credits_micro), 0) AS s FROM request_logs WHERE created_at >= :start"
    start = datetime.strptime(month + "-01", "%Y-%m-%d")
    spent = int(limits_gateway.query(month_total, start=start)[0]["s"])
    allowance_micro = spent + 60_000
    save_settings(session, limits_gateway, allowance=f"{allowance_micro / 1_000_000:.6f}")
    url = limits_gateway.url  # the process that saved the setting knows it at once
    try:
        statuses = []
        for _ in range(30):
            response = limits_gateway.chat(key, "priced", ip=new_ip(), url=url, extra={"max_tokens": 10})
            statuses.append(response.status_code)
            if response.status_code != 200:
                break
        assert statuses[-1] == 402 and len(statuses) > 1
        assert response.headers["x-should-retry"] == "false"
        assert "organisation" in error_of(response)["message"]
        org = limits_gateway.query("SELECT used_micro, reserved_micro FROM org_budget WHERE period = :p",
                                   p=month)[0]
        assert org["reserved_micro"] == 0
        assert org["used_micro"] == int(limits_gateway.query(month_total, start=start)[0]["s"])
        assert allowance_micro - 20_000 <= org["used_micro"] <= allowance_micro + 20_000
        page = session.get(f"{limits_gateway.url}/settings", timeout=10).text
        assert "credits used" in page
    finally:
        save_settings(session, limits_gateway)
    after = limits_gateway.chat(key, "priced", ip=new_ip(), url=url, extra={"max_tokens": 10})
    assert after.status_code == 200
