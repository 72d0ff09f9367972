"""Catalog test helpers: clients logged in per role, CSRF tokens read from real pages."""
from __future__ import annotations

import re

import pytest

PASSWORD = "a-long-password-1"


def csrf_token(client, url: str = "/catalog") -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"csrf_token": token, "username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def client_for(app, owner):
    """client_for(role) → a test client logged in as a new user with that role."""
    from app.accounts import service as accounts

    def make(role: str):
        with app.app_context():
            accounts.create_user(f"{role}-user", PASSWORD, role)
        client = app.test_client()
        login(client, f"{role}-user")
        return client

    return make


@pytest.fixture
def admin(client_for):
    return client_for("admin")


@pytest.fixture
def auditor(client_for):
    return client_for("auditor")


@pytest.fixture
def post(app):
    """post(client, url, data, htmx=False): a form POST with the page's CSRF token."""

    def send(client, url: str, data: dict | None = None, htmx: bool = False, **kwargs):
        form = {"csrf_token": csrf_token(client), **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return client.post(url, data=form, headers=headers, **kwargs)

    return send
