"""Login and logout: messages, audit events, safe redirects, sessions that really end."""
from __future__ import annotations

from support.web import csrf_token, log_in, post_form


def test_login_with_correct_password_opens_the_admin_pages(client, owner, audit_log):
    response = log_in(client, owner["username"], owner["password"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/keys")
    assert client.get("/keys").status_code == 200
    events = audit_log("login.success")
    assert len(events) == 1
    assert events[0]["actor_name"] == "owner" and events[0]["actor_id"] is not None
    assert events[0]["ip"] == "127.0.0.1"


def test_wrong_password_is_refused_and_recorded_without_the_password(client, owner, audit_log):
    response = log_in(client, "owner", "not-the-password-123")
    assert response.status_code == 401
    assert "Unknown user name or wrong password." in response.get_data(as_text=True)
    assert client.get("/keys").status_code == 302  # still not logged in
    failure = audit_log("login.failure")[0]
    assert failure["actor_name"] == "owner" and failure["actor_id"] is None
    assert "not-the-password-123" not in repr(audit_log())


def test_unknown_user_gets_the_same_message_and_the_attempted_name_is_recorded(client, owner, audit_log):
    response = log_in(client, "mallory", "whatever-password")
    assert response.status_code == 401
    assert "Unknown user name or wrong password." in response.get_data(as_text=True)
    assert audit_log("login.failure")[0]["actor_name"] == "mallory"


def test_user_names_are_case_insensitive_at_login(client, owner):
    assert log_in(client, "OWNER", owner["password"]).status_code == 302


def test_login_follows_a_local_next_but_never_an_external_one(client, owner):
    token = csrf_token(client, "/login")
    form = {"csrf_token": token, "username": owner["username"], "password": owner["password"]}
    assert client.post("/login?next=/audit", data=form).headers["Location"].endswith("/audit")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
        response = client.post(f"/login?next={target}", data={**form, "csrf_token": csrf_token(client)})
        assert response.headers["Location"].endswith("/keys"), target


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client, owner, audit_log):
    log_in(client, owner["username"], owner["password"])
    stolen = client.get_cookie("session").value
    response = post_form(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert client.get("/keys").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/keys").status_code == 302  # the old cookie no longer logs anyone in
    assert [e["actor_name"] for e in audit_log("logout")] == ["owner"]


def test_a_logged_in_user_visiting_login_goes_to_the_admin_pages(client, owner):
    log_in(client, owner["username"], owner["password"])
    assert client.get("/login").headers["Location"].endswith("/keys")


def test_anonymous_visitors_are_sent_to_login(client, owner):
    for path in ("/keys", "/users", "/account", "/audit", "/audit.csv"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
