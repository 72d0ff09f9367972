"""First-run setup: every page leads to /setup until an owner exists; the token is required."""
import re


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_pages_redirect_to_setup_until_owner_exists(client):
    response = client.get("/keys")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/setup")


def test_setup_needs_the_token(client, app):
    page = client.get("/setup").get_data(as_text=True)
    form = {"csrf_token": _csrf(page), "token": "wrong", "username": "anna",
            "password": "a-long-password", "password_confirm": "a-long-password"}
    response = client.post("/setup", data=form)
    assert response.status_code == 422
    assert "setup token is not correct" in response.get_data(as_text=True)

    form["token"] = app.config["PFORTE_SETUP_TOKEN"]
    response = client.post("/setup", data=form)
    assert response.status_code == 302
    assert client.get("/keys").status_code == 200
    # Once an owner exists, /setup no longer offers itself.
    assert client.get("/setup").status_code == 302


def test_live_server_starts_and_answers(live_server):
    import requests

    assert requests.get(f"{live_server.url}/healthz", timeout=5).json() == {"status": "ok"}
    response = requests.get(f"{live_server.url}/v1/does-not-exist", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def _setup_form(client, app, page="/setup", **changes):
    form = {"csrf_token": _csrf(client.get(page).get_data(as_text=True)),
            "token": app.config["PFORTE_SETUP_TOKEN"], "username": "anna",
            "password": "a-long-password", "password_confirm": "a-long-password"}
    form.update(changes)
    return form


def test_setup_explains_each_mistake_and_keeps_the_user_name(client, app):
    cases = [({"password_confirm": "another-password"}, "The passwords do not match."),
             ({"password": "short", "password_confirm": "short"}, "at least 10 characters"),
             ({"username": "   "}, "1 to 64 characters"),
             ({"token": "ünïcödé-token"}, "setup token is not correct")]
    for changes, message in cases:
        response = client.post("/setup", data=_setup_form(client, app, **changes))
        html = response.get_data(as_text=True)
        assert response.status_code == 422, changes
        assert message in html, changes
        if "username" not in changes:
            assert 'value="anna"' in html
    assert client.get("/keys").headers["Location"].endswith("/setup")  # still no owner


def test_setup_logs_the_owner_in_and_records_it(client, app):
    from app.audit.models import AuditEvent
    from app.extensions import db

    response = client.post("/setup", data=_setup_form(client, app))
    assert response.headers["Location"].endswith("/keys")
    assert "anna (Owner)" in client.get("/account").get_data(as_text=True)
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="user.create").one()
        assert (event.actor_name, event.target_name) == ("anna", "anna")


def test_setup_cannot_run_twice(client, app, owner):
    other = app.test_client()
    response = other.post("/setup", data=_setup_form(other, app, page="/login", username="intruder"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    with app.app_context():
        from app.accounts import service

        assert [u.username for u in service.list_users()] == ["owner"]


def test_the_api_and_health_are_not_sent_to_setup(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/models").status_code == 401
