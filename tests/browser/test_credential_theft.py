"""Item 4 of issue 14, as the attack was tried: an `admin` (not an owner) points the owner's connection at
a listener of theirs and presses "Test connection". The organisation's key must never reach the listener."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect
from support.browser import login
from support.processes import free_port, wait_until_up

pytestmark = pytest.mark.browser

ORG_KEY = "sk-organisation-key-Hq73ZpX"
ADMIN = ("mallory", "mallory-password-1")
LISTENER = Path(__file__).resolve().parent.parent / "support" / "listener.py"


@pytest.fixture
def listener(tmp_path):
    """(url, read()) of a listener process; read() → the requests it received."""
    port, log = free_port(), tmp_path / "listener.jsonl"
    log.touch()
    process = subprocess.Popen([sys.executable, str(LISTENER), "--port", str(port), "--log", str(log)])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process)
        log.write_text("")  # forget the start-up check
        yield f"http://127.0.0.1:{port}", lambda: [json.loads(line) for line in log.read_text().splitlines()]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_admin_cannot_send_the_organisation_key_to_their_listener(page, admin_server, listener):
    listener_url, received = listener
    admin_server.setup_cli("users", "create", "--username", ADMIN[0], "--role", "admin", "--password-stdin",
                           input=ADMIN[1] + "\n")
    admin_server.cli("connections", "add", "--name", "org-openai", "--kind", "openai", "--base-url",
                     "http://127.0.0.1:9/v1", "--api-key-env", "ORG_KEY", "--connect-timeout", "2",
                     env={"ORG_KEY": ORG_KEY})
    login(page, admin_server.url, *ADMIN)

    # The attack: the base URL changed to the listener, the stored key kept.
    page.goto(f"{admin_server.url}/catalog")
    page.get_by_role("link", name="Edit org-openai").click()
    page.get_by_label("Base URL").fill(f"{listener_url}/v1")
    page.get_by_role("button", name="Save connection").click()
    expect(page.get_by_text("The base URL changed: enter the API key again")).to_be_visible()

    page.goto(f"{admin_server.url}/catalog")
    row = page.locator("tr", has_text="org-openai")
    expect(row.get_by_text("127.0.0.1:9")).to_be_visible()  # the change was not saved
    row.get_by_role("button", name="Test connection").click()
    expect(row.get_by_text("Could not connect to the upstream")).to_be_visible()
    assert received() == []

    # With a key of their own the admin may repoint the connection: the listener gets only that key.
    page.get_by_role("link", name="Edit org-openai").click()
    page.get_by_label("Base URL").fill(f"{listener_url}/v1")
    page.get_by_label("API key", exact=True).fill("sk-mallory-own")
    page.get_by_role("button", name="Save connection").click()
    expect(page.get_by_text("Connection “org-openai” saved.")).to_be_visible()
    page.locator("tr", has_text="org-openai").get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("The upstream offers 1 model.")).to_be_visible()
    [probe] = received()
    assert probe["headers"]["authorization"] == "Bearer sk-mallory-own"
    assert ORG_KEY not in json.dumps(received())
