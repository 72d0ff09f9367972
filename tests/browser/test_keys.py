"""A key's life in real Chromium: create → shown once and copied → gone after reload → revoke → Revoked."""
import re

import pytest
import requests

pytestmark = pytest.mark.browser

KEY = re.compile(r"^sk-pf-[0-9A-Za-z]{38}$")


def test_create_copy_reload_and_revoke(logged_in_page, admin_server):
    page = logged_in_page
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=admin_server.url)
    page.goto(f"{admin_server.url}/keys")

    page.get_by_role("link", name="Create key").click()
    dialog = page.locator("dialog#key-dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("Name").fill("Browser key")
    dialog.get_by_role("button", name="Create key").click()

    created = page.locator("dialog#created-dialog")
    created.wait_for(state="visible")
    assert created.get_by_text("It will not be shown again").is_visible()
    plaintext = created.locator("#new-key").input_value()
    assert KEY.match(plaintext)
    created.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.querySelector('#copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    created.get_by_role("button", name="Done").click()
    created.wait_for(state="hidden")

    # The table refreshed itself: the new key is listed by name and prefix, active.
    row = page.locator("tr", has_text="Browser key")
    row.wait_for()
    assert plaintext[:14] in row.inner_text() and "Active" in row.inner_text()
    # The key works at the gateway.
    models = requests.get(f"{admin_server.url}/v1/models", headers={"Authorization": f"Bearer {plaintext}"},
                          timeout=10)
    assert models.status_code == 200

    page.reload()
    page.locator("tr", has_text="Browser key").wait_for()
    assert plaintext not in page.content()
    assert plaintext[14:] not in page.content()

    page.locator("tr", has_text="Browser key").get_by_role("link", name="Revoke").click()
    confirm = page.locator("dialog#revoke-dialog")
    confirm.wait_for(state="visible")
    assert confirm.get_by_text("cannot be undone").is_visible()
    confirm.get_by_role("button", name="Revoke key").click()
    confirm.wait_for(state="detached")
    page.locator("tr", has_text="Browser key").locator(".badge-revoked").wait_for()
    assert "Revoked" in page.locator("tr", has_text="Browser key").inner_text()

    # Effective on the very next request.
    refused = requests.get(f"{admin_server.url}/v1/models", headers={"Authorization": f"Bearer {plaintext}"},
                           timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert problems == []
