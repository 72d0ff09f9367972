"""Browser fixtures: one Chromium per session, a fresh context per test, a live server with an owner."""
from __future__ import annotations

import pytest
from support.browser import ARGS, CHROMIUM, login, require_chromium

OWNER = ("owner", "owner-password-1")


@pytest.fixture(scope="session")
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def admin_server(live_server):
    """A live server with an owner account (created through the real CLI)."""
    live_server.setup_cli("users", "create", "--username", OWNER[0], "--role", "owner", "--password-stdin",
                          input=OWNER[1] + "\n")
    return live_server


@pytest.fixture
def logged_in_page(page, admin_server):
    login(page, admin_server.url, *OWNER)
    return page
