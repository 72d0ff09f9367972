"""Admin sessions and pages against a running `pforte serve`: idle timeout and absolute lifetime (set small
here), CSRF tokens that end with the session, the __Host- cookie under HTTPS, Cache-Control: no-store on
every admin page, and `next` targets that never leave the site."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests
from support.browser import OWNER
from support.processes import live_servers
from support.waiting import wait_until

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CANCEL = re.compile(r'<a class="button secondary" href="([^"]*)">Cancel</a>')
HOSTILE = ("https://evil.example/", "//evil.example/keys", "/\\evil.example", "javascript:alert(1)",
           "/\t/evil.example", "http:/evil.example", " /keys", "\\\\evil.example")


def _start(start, **env):
    server = start(env={"PFORTE_TRUSTED_PROXIES": "127.0.0.1/32", **env}, name=str(len(env)))
    server.setup_cli("users", "create", "--username", OWNER[0], "--role", "owner", "--password-stdin",
                     input=OWNER[1] + "\n")
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with live_servers(tmp_path_factory.mktemp("sessions")) as start:
        yield {"plain": _start(start),
               "short": _start(start, PFORTE_SESSION_IDLE_SECONDS="2", PFORTE_SESSION_LIFETIME_SECONDS="5")}


def token_of(session: requests.Session, url: str, **kwargs) -> str:
    return CSRF.search(session.get(url, timeout=10, **kwargs).text).group(1)


def logged_in(server, next_target: str | None = None) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    token = token_of(session, f"{server.url}/login")
    answer = session.post(f"{server.url}/login", params={"next": next_target} if next_target else None,
                          data={"csrf_token": token, "username": OWNER[0], "password": OWNER[1]},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return session, answer


def status_with(server, cookies: dict, path: str = "/keys") -> int:
    """The status of a request carrying exactly these cookies (whatever the answer sets is dropped)."""
    return requests.get(f"{server.url}{path}", cookies=cookies, allow_redirects=False, timeout=10).status_code


# --- session lifetime --------------------------------------------------------------------------------

def test_a_session_ends_after_the_idle_time(servers):
    server = servers["short"]
    session, _answer = logged_in(server)
    started = time.monotonic()
    frozen = session.cookies.get_dict()  # the cookie as it was at the last request
    assert status_with(server, frozen) == 200
    wait_until(lambda: status_with(server, frozen) == 302, 10, "the idle session to end")
    assert time.monotonic() - started >= 1  # whole seconds: it ended after the idle time, not at once
    answer = requests.get(f"{server.url}/keys", cookies=frozen, allow_redirects=False, timeout=10)
    assert "/login" in answer.headers["Location"]


def test_an_active_session_outlives_the_idle_time_but_not_its_lifetime(servers):
    server = servers["short"]
    session, _answer = logged_in(server)
    started = time.monotonic()
    statuses: list[tuple[float, int]] = []

    def used_until_it_ends() -> bool:
        status = session.get(f"{server.url}/keys", allow_redirects=False, timeout=10).status_code
        statuses.append((time.monotonic() - started, status))
        return status == 302

    wait_until(used_until_it_ends, 15, "the session's lifetime to end", interval=0.5)
    alive = [at for at, status in statuses if status == 200]
    assert max(alive) > 2.5  # kept alive by use beyond the 2-second idle time
    assert statuses[-1][0] >= 4  # ended at the 5-second lifetime (whole seconds)


def test_a_csrf_token_ends_with_its_session(servers):
    server = servers["short"]
    session, _answer = logged_in(server)
    token = token_of(session, f"{server.url}/keys/new")
    frozen = session.cookies.get_dict()
    wait_until(lambda: status_with(server, frozen) == 302, 10, "the idle session to end")
    answer = requests.post(f"{server.url}/keys/new", data={"csrf_token": token, "name": "after-the-end"},
                           cookies=frozen, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 400) and "/keys/" not in answer.headers.get("Location", "/login")
    names = [key["name"] for key in json.loads(server.cli("keys", "list", "--json").stdout)]
    assert "after-the-end" not in names


# --- cookies and headers -----------------------------------------------------------------------------

def test_under_https_the_session_cookie_has_the_host_prefix(servers):
    server = servers["plain"]
    https = {"X-Forwarded-Proto": "https"}
    session = requests.Session()
    page = session.get(f"{server.url}/login", headers=https, timeout=10)
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    token = CSRF.search(page.text).group(1)
    value = cookie.split(";", 1)[0]
    answer = requests.post(f"{server.url}/login", headers={
        **https, "Cookie": value, "Referer": f"https://127.0.0.1:{server.port}/login"},
        data={"csrf_token": token, "username": OWNER[0], "password": OWNER[1]}, allow_redirects=False,
        timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Set-Cookie"].startswith("__Host-session=")
    plain = requests.get(f"{server.url}/login", timeout=10)
    assert plain.headers["Set-Cookie"].startswith("session=")  # plain http keeps the plain name


def test_every_admin_page_says_no_store(servers):
    server = servers["plain"]
    session, _answer = logged_in(server)
    assert requests.get(f"{server.url}/login", timeout=10).headers.get("Cache-Control") == "no-store"
    for path in ("/keys", "/catalog", "/usage", "/audit", "/users", "/settings", "/account",
                 "/use", "/docs", "/playground", "/keys/new"):
        answer = session.get(f"{server.url}{path}", allow_redirects=False, timeout=10)
        assert answer.status_code == 200, path
        assert answer.headers.get("Cache-Control") == "no-store", path


# --- next targets ------------------------------------------------------------------------------------

def test_the_revoke_dialog_cancel_link_stays_on_the_site(servers):
    server = servers["plain"]
    session, _answer = logged_in(server)
    key = json.loads(server.cli("keys", "create", "--name", "redirect-test", "--json").stdout)
    revoke = f"{server.url}/keys/{key['id']}/revoke"
    for target in HOSTILE:
        page = session.get(revoke, params={"next": target}, timeout=10).text
        assert CANCEL.findall(page) == ["/keys"], target
        assert not re.search(r'(href|action|value)="(https?:|//|/\\|javascript:|\s)', page), target
    page = session.get(revoke, params={"next": "/keys?page=2"}, timeout=10).text
    assert CANCEL.findall(page) == ["/keys?page=2"]


@pytest.mark.parametrize("target", HOSTILE)
def test_login_never_redirects_off_the_site(servers, target):
    _session, answer = logged_in(servers["plain"], next_target=target)
    location = answer.headers["Location"]
    assert location.endswith("/keys") and "evil" not in location and not location.startswith("javascript")


def test_login_keeps_a_local_next_target(servers):
    _session, answer = logged_in(servers["plain"], next_target="/catalog?x=1")
    assert answer.headers["Location"].endswith("/catalog?x=1")


def test_the_language_switch_never_redirects_off_the_site(servers):
    server = servers["plain"]
    session = requests.Session()
    token = token_of(session, f"{server.url}/login")
    for target in HOSTILE:
        answer = session.post(f"{server.url}/language", data={"csrf_token": token, "language": "de",
                                                             "next": target}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and "evil" not in answer.headers["Location"], target
