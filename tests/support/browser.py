"""Playwright with Debian's Chromium; never downloads a browser."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
OWNER = ("owner", "owner-password-1")  # the owner that the browser fixtures create
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("PFORTE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing but PFORTE_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed")


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
