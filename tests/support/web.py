"""Flask test-client helpers for the admin pages: CSRF tokens read from real pages, logging in."""
from __future__ import annotations

import re

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, url: str = "/login") -> str:
    """The CSRF token of the form on `url` (as a browser would read it)."""
    page = client.get(url).get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def log_in(client, username: str, password: str):
    """POST the login form; returns the response (302 on success)."""
    return client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "username": username,
                                       "password": password})


def post_form(client, url: str, data: dict | None = None, page: str = "/account", htmx: bool = False,
              **kwargs):
    """A form POST carrying the CSRF token of `page` (a page every logged-in role may open)."""
    form = {"csrf_token": csrf_token(client, page), **(data or {})}
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data=form, headers=headers, **kwargs)
