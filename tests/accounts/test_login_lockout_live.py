"""Against a running `pforte serve`: wrong passwords for the owner from one address neither lock the
owner out nor block the owner's right password from another address; each throttling is audited."""
from __future__ import annotations

import csv
import http.client
import io
import re
from urllib.parse import urlencode

from support.browser import OWNER as OWNER_PAIR

OWNER = {"username": OWNER_PAIR[0], "password": OWNER_PAIR[1]}

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login_from(server, source: str, username: str, password: str) -> tuple[int, str]:
    """GET /login and POST it over a connection from `source` (a loopback address): (status, cookie)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
        token = CSRF.search(page.read().decode()).group(1)
        body = urlencode({"csrf_token": token, "username": username, "password": password})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("Set-Cookie", cookie).split(";", 1)[0]
    finally:
        conn.close()


def audit_rows(server, source: str, cookie: str, action: str) -> list[dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", f"/audit.csv?action={action}", headers={"Cookie": cookie})
        answer = conn.getresponse()
        assert answer.status == 200
        return list(csv.DictReader(io.StringIO(answer.read().decode())))
    finally:
        conn.close()


def test_twelve_wrong_passwords_from_one_address_do_not_lock_the_owner_out(live_server_factory):
    server = live_server_factory(env={"PFORTE_LOGIN_MAX_DELAY_SECONDS": "0.2"})
    server.setup_cli("users", "create", "--username", OWNER["username"], "--role", "owner",
                     "--password-stdin", input=OWNER["password"] + "\n")
    statuses = [login_from(server, "127.0.0.1", OWNER["username"], "wrong-password")[0] for _ in range(12)]
    assert statuses == [401] * 5 + [429] * 7
    status, cookie = login_from(server, "127.0.0.2", OWNER["username"], OWNER["password"])
    assert status == 302
    throttled = audit_rows(server, "127.0.0.2", cookie, "login.throttled")
    assert len(throttled) == 7 and {row["ip"] for row in throttled} == {"127.0.0.1"}
    assert all(row["target"] == OWNER["username"] for row in throttled)
    slowed = audit_rows(server, "127.0.0.2", cookie, "login.slowed")
    assert [row["ip"] for row in slowed] == ["127.0.0.2"]  # the owner's own login waited, and it says so
