"""A key's life in real Chromium: create → shown once and copied → gone after reload → revoke → Revoked."""
import re

import pytest
import requests
from playwright.sync_api import expect

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


def test_edit_policy_in_the_dialog_and_toggle_the_key(logged_in_page, admin_server):
    page = logged_in_page
    admin_server.cli("keys", "create", "--name", "Translation")
    page.goto(f"{admin_server.url}/keys")
    row = page.locator("tr", has_text="Translation")
    row.get_by_role("link", name="Edit").click()
    dialog = page.locator("dialog#key-dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_text("Restrictions and limits").click()
    dialog.get_by_label("Allowed IP addresses").fill("10.0.0.0/33")
    dialog.get_by_label("Quota in credits").fill("5")
    dialog.get_by_role("button", name="Save").click()
    # The dialog comes back with the message and keeps what was typed.
    page.locator("dialog#key-dialog .field-error").wait_for()
    dialog = page.locator("dialog#key-dialog")
    assert "is not an IP address or CIDR range" in dialog.inner_text()
    assert dialog.get_by_label("Quota in credits").input_value() == "5"
    dialog.get_by_label("Allowed IP addresses").fill("10.0.0.0/8\n2001:db8::/32")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="detached")
    row = page.locator("tr", has_text="Translation")
    row.get_by_text("2 IP ranges").wait_for()
    assert "0 of 5 credits" in row.inner_text()

    row.get_by_role("button", name="Disable").click()
    row.get_by_role("button", name="Enable").wait_for()
    assert "Disabled" in row.inner_text()
    row.get_by_role("button", name="Enable").click()
    row.get_by_role("button", name="Disable").wait_for()
    assert "Active" in row.inner_text()


def test_key_dialog_marks_the_demo_model(logged_in_page, admin_server):
    page = logged_in_page
    admin_server.cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    admin_server.cli("models", "add", "--id", "demo-chat", "--connection", "demo", "--name", "Demo chat")
    admin_server.cli("connections", "add", "--name", "vllm", "--kind", "openai", "--base-url",
                     "http://127.0.0.1:9/v1")
    admin_server.cli("models", "add", "--id", "local-chat", "--connection", "vllm", "--name", "Local chat")
    page.goto(f"{admin_server.url}/keys")
    page.get_by_role("link", name="Create key").click()
    dialog = page.locator("dialog#key-dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_text("Restrictions and limits").click()
    models = dialog.get_by_role("group", name="Allowed models")
    demo = models.locator("label", has=page.get_by_role("checkbox", name="demo-chat"))
    local = models.locator("label", has=page.get_by_role("checkbox", name="local-chat"))
    expect(demo.locator(".badge-demo")).to_have_text("demo")
    expect(demo).to_contain_text("Demo chat")
    expect(local).to_contain_text("Local chat")
    expect(local.locator(".badge-demo")).to_have_count(0)
