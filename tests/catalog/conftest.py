"""Catalog test helpers: clients logged in per role (tests/support/accounts.py), form posts with a real
CSRF token."""
from __future__ import annotations

import pytest
from support.accounts import client_as, make_user  # noqa: F401  (fixtures)
from support.web import post_form


@pytest.fixture
def admin(client_as):  # noqa: F811
    return client_as("admin")


@pytest.fixture
def auditor(client_as):  # noqa: F811
    return client_as("auditor")


@pytest.fixture
def post():
    """post(client, url, data, htmx=False): a form POST with the CSRF token of the catalog page."""

    def send(client, url: str, data: dict | None = None, htmx: bool = False, **kwargs):
        return post_form(client, url, data, page="/catalog", htmx=htmx, **kwargs)

    return send
