"""Login throttling: failed attempts are counted per IP and per (user name, IP); once full, even the
right password is refused from there with a clear message until the window ends. Failures for one user
name from many addresses slow that name's attempts down but lock nobody out."""
from __future__ import annotations

import time

import pytest
from support.web import csrf_token

THROTTLED = "Too many failed attempts from this address or for this user name."


def attempt(client, username: str, password: str, ip: str):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_five_failures_from_one_ip_block_that_ip_even_with_the_right_password(client, owner, audit_log):
    for n in range(5):
        assert attempt(client, f"guess-{n}", "wrong-password", "10.0.0.1").status_code == 401
    response = attempt(client, owner["username"], owner["password"], "10.0.0.1")
    assert response.status_code == 429
    assert THROTTLED in response.get_data(as_text=True)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert client.get("/keys").status_code == 302
    # Another address is not affected.
    assert attempt(client, owner["username"], owner["password"], "10.0.0.2").status_code == 302
    throttled = audit_log("login.throttled")
    assert len(throttled) == 1 and throttled[0]["ip"] == "10.0.0.1"


@pytest.fixture
def slow_app(app_with):
    app = app_with(PFORTE_LOGIN_MAX_DELAY_SECONDS="0.5")
    with app.app_context():
        from app.accounts import service

        service.create_user("owner", "owner-password-1", "owner")
    return app


def test_failures_for_one_user_name_from_many_addresses_slow_it_down_but_do_not_lock_it(slow_app):
    client = slow_app.test_client()
    for n in range(12):
        assert attempt(client, "Owner", "wrong-password", f"10.0.1.{n}").status_code == 401
    started = time.monotonic()
    response = attempt(client, "owner", "owner-password-1", "10.0.2.1")
    assert response.status_code == 302
    assert time.monotonic() - started >= 0.5  # the slow-down, at most PFORTE_LOGIN_MAX_DELAY_SECONDS
    with slow_app.app_context():
        from app.audit.models import AuditEvent
        from app.extensions import db

        slowed = db.session.query(AuditEvent).filter_by(action="login.slowed").all()
    # every attempt after the counter was full was slowed, and each slow-down is in the audit trail
    assert len(slowed) == 12 - 5 + 1
    assert {e.target_name for e in slowed} == {"Owner", "owner"}
    assert '"delay_seconds": 0.5' in slowed[-1].after and slowed[-1].ip == "10.0.2.1"


def test_failures_for_a_user_name_from_one_address_block_that_pair_only(client, owner, audit_log):
    for _ in range(5):
        assert attempt(client, owner["username"], "wrong-password", "10.0.7.1").status_code == 401
    assert attempt(client, owner["username"], owner["password"], "10.0.7.1").status_code == 429
    assert attempt(client, owner["username"], owner["password"], "10.0.7.2").status_code == 302
    assert [e["ip"] for e in audit_log("login.throttled")] == ["10.0.7.1"]


def test_a_successful_login_clears_the_user_name_counter(app, client, owner):
    for n in range(4):
        attempt(client, "owner", "wrong-password", f"10.0.3.{n}")
    assert attempt(client, "owner", owner["password"], "10.0.3.9").status_code == 302
    client = app.test_client()
    for n in range(4):
        assert attempt(client, "owner", "wrong-password", f"10.0.4.{n}").status_code == 401
    assert attempt(client, "owner", owner["password"], "10.0.4.9").status_code == 302


@pytest.fixture
def strict_app(app_with):
    app = app_with(PFORTE_LOGIN_ATTEMPTS="2/hour")
    with app.app_context():
        from app.accounts import service

        service.create_user("owner", "owner-password-1", "owner")
    return app


def test_the_limit_comes_from_the_login_attempts_setting(strict_app):
    client = strict_app.test_client()
    for _ in range(2):
        assert attempt(client, "owner", "wrong-password", "10.0.5.1").status_code == 401
    response = attempt(client, "owner", "owner-password-1", "10.0.5.1")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 60  # an hour window


def test_wrong_setup_tokens_are_throttled_per_ip(client, app):
    form = {"username": "anna", "password": "a-long-password", "password_confirm": "a-long-password"}
    for n in range(5):
        token = csrf_token(client, "/setup")
        response = client.post("/setup", data={**form, "csrf_token": token, "token": f"guess-{n}"},
                               environ_base={"REMOTE_ADDR": "10.0.6.1"})
        assert response.status_code == 422
    token = csrf_token(client, "/setup")
    right = {**form, "csrf_token": token, "token": app.config["PFORTE_SETUP_TOKEN"]}
    response = client.post("/setup", data=right, environ_base={"REMOTE_ADDR": "10.0.6.1"})
    assert response.status_code == 429 and THROTTLED in response.get_data(as_text=True)
    with app.app_context():
        from app.audit.models import AuditEvent
        from app.extensions import db

        assert [e.ip for e in db.session.query(AuditEvent).filter_by(action="setup.throttled")] == ["10.0.6.1"]
    assert client.post("/setup", data=right, environ_base={"REMOTE_ADDR": "10.0.6.2"}).status_code == 302
