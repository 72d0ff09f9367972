"""Browser fixtures: one Chromium per session, a fresh context per test, a live server with an owner
(one per test, or one per module for tests that leave the server as they found it)."""
from __future__ import annotations

import pytest
from support.browser import ARGS, CHROMIUM, OWNER, login, require_chromium
from support.processes import live_servers


@pytest.fixture(scope="session")
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def _new_page(chromium, **options):
    context = chromium.new_context(locale="en-US", **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def page(chromium):
    page = _new_page(chromium)
    yield page
    page.context.close()


def _create_owner(server) -> None:
    server.setup_cli("users", "create", "--username", OWNER[0], "--role", "owner", "--password-stdin",
                     input=OWNER[1] + "\n")


@pytest.fixture
def admin_server(live_server):
    """A live server with an owner account (created through the real CLI)."""
    _create_owner(live_server)
    return live_server


@pytest.fixture(scope="module")
def shared_admin_server(tmp_path_factory):
    """One live server with an owner for a whole module: only for tests that change nothing on it."""
    with live_servers(tmp_path_factory.mktemp("shared")) as start:
        server = start()
        _create_owner(server)
        yield server


@pytest.fixture(scope="module")
def owner_state(chromium, shared_admin_server):
    """The owner's logged-in browser state on the shared server (one login per module)."""
    page = _new_page(chromium)
    login(page, shared_admin_server.url, *OWNER)
    state = page.context.storage_state()
    page.context.close()
    return state


@pytest.fixture
def owner_page(chromium, owner_state):
    """A fresh browser context, logged in as the owner of the shared server."""
    page = _new_page(chromium, storage_state=owner_state)
    yield page
    page.context.close()


@pytest.fixture
def logged_in_page(page, admin_server):
    login(page, admin_server.url, *OWNER)
    return page
