"""Security headers, session cookie flags, CSRF on forms and HTMX, no inline script or style."""
from __future__ import annotations

import re

from support.web import csrf_token, log_in


def csp_directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def test_admin_pages_send_the_security_headers(client, owner):
    response = client.get("/login")
    csp = csp_directives(response)
    assert csp["script-src"] == "script-src 'self'"
    assert csp["style-src"] == "style-src 'self'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["object-src"] == "object-src 'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("no-referrer", "same-origin", "strict-origin")
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_hsts_only_over_https(client, owner):
    response = client.get("/login", base_url="https://pforte.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_pages_contain_no_inline_script_or_style(client_as, make_user):
    make_user("other", "auditor")
    client = client_as("owner")
    for path in ("/users", "/account", "/audit", "/login"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers


def session_cookie_header(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(("session=", "__Host-session=")))


def test_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(client, owner):
    response = log_in(client, owner["username"], owner["password"])
    cookie = session_cookie_header(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client, owner):
    token = csrf_token(client, "https://pforte.example/login")
    form = {"csrf_token": token, "username": owner["username"], "password": owner["password"]}
    response = client.post("https://pforte.example/login", data=form,
                           headers={"Referer": "https://pforte.example/login"})
    assert response.status_code == 302
    cookie = session_cookie_header(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(app_with):
    client = app_with(PFORTE_TRUSTED_PROXIES="10.1.0.0/16").test_client()
    trusted = client.get("/setup", headers={"X-Forwarded-Proto": "https"},
                         environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert "Secure" in session_cookie_header(trusted)
    assert "Strict-Transport-Security" in trusted.headers
    stranger = client.get("/setup", headers={"X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert "Secure" not in session_cookie_header(stranger)
    assert "Strict-Transport-Security" not in stranger.headers


def test_a_form_post_without_csrf_token_is_refused(client, owner):
    response = client.post("/login", data={"username": owner["username"], "password": owner["password"]})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    assert client.get("/keys").status_code == 302  # not logged in


def test_a_logged_in_post_with_a_wrong_token_is_refused(client_as, make_user, audit_log):
    owner = client_as("owner")
    victim = make_user("victim", "admin")
    response = owner.post(f"/users/{victim}/disable", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert not audit_log("user.disable")


def test_htmx_requests_with_the_header_token_are_accepted(client_as, make_user, audit_log):
    owner = client_as("owner")
    victim = make_user("victim", "admin")
    page = owner.get("/users").get_data(as_text=True)
    header_token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = owner.post(f"/users/{victim}/disable",
                          headers={"HX-Request": "true", "X-CSRFToken": header_token})
    assert response.status_code == 200
    assert "User victim was disabled." in response.get_data(as_text=True)
    assert audit_log("user.disable")[-1]["target_name"] == "victim"
    # The same HTMX request without the header is refused.
    response = owner.post(f"/users/{victim}/enable", headers={"HX-Request": "true"})
    assert response.status_code == 400


def test_bad_input_never_shows_a_stack_trace(client_as):
    owner = client_as("owner")
    for path in ("/audit?page=-3&date_from=31.12.2025&date_to=x", "/audit?page=99999", "/users/abc/disable"):
        response = owner.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 404, 405), path
        assert "Traceback" not in body
