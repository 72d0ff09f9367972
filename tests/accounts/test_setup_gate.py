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
    assert response.status_code == 400
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
