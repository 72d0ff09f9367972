"""Invalid input on every form page, in real Chromium: the server answers 422 with its messages, the
browser shows them (htmx swaps 422), what was typed stays, and nothing is saved.

Every test here leaves the server as it found it, so the module shares one live server and one login."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from support.browser import OWNER, login

pytestmark = pytest.mark.browser

UNCHANGED_MARK = "window.__sameDocument = true"  # gone if the browser loads a new document


@pytest.fixture(scope="module")
def server(shared_admin_server):
    """The shared server with a demo connection and one key with a request limit."""
    shared_admin_server.cli("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    shared_admin_server.cli("keys", "create", "--name", "Policy key", "--rpm", "10")
    return shared_admin_server


def listed(server, what: str) -> list[dict]:
    return json.loads(server.cli(what, "list", "--json").stdout)


def refused(page, path: str, submit) -> None:
    """Submit, and check that the POST to `path` was answered 422 (the one status for a form with errors)."""
    with page.expect_response(lambda r: r.request.method == "POST" and urlsplit(r.url).path == path) as answer:
        submit()
    assert answer.value.status == 422


def test_settings_errors_are_shown_in_place(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/settings")
    page.evaluate(UNCHANGED_MARK)
    page.get_by_label("Credits per month").fill("not-a-number")
    page.get_by_label("Requests", exact=True).fill("-5")
    refused(page, "/settings", lambda: page.get_by_role("button", name="Save settings").click())

    expect(page.locator("#allowance-error")).to_contain_text("Enter a number of credits such as 5000")
    expect(page.locator("#per-ip-error")).to_contain_text("Enter a whole number of requests between 1 and")
    expect(page.get_by_label("Credits per month")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Credits per month")).to_have_value("not-a-number")
    expect(page.get_by_label("Requests", exact=True)).to_have_value("-5")
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the answer into the page

    page.reload()
    expect(page.get_by_text("The organisation has no monthly allowance")).to_be_visible()
    expect(page.get_by_label("Credits per month")).to_have_value("")
    expect(page.get_by_label("Requests", exact=True)).to_have_value("")


def test_key_dialog_shows_the_errors_of_a_new_key(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/keys")
    page.get_by_role("link", name="Create key").click()
    dialog = page.locator("dialog#key-dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_text("Restrictions and limits").click()
    dialog.get_by_label("Allowed IP addresses").fill("not-an-ip")
    dialog.get_by_label("Quota in credits").fill("lots")
    dialog.get_by_label("Requests per minute").fill("0")
    refused(page, "/keys/new", lambda: dialog.get_by_role("button", name="Create key").click())

    dialog = page.locator("dialog#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("alert")).to_have_text("Please correct the marked fields.")
    expect(dialog.locator("#name-error")).to_contain_text("Enter a name")
    expect(dialog.locator("#allowed_cidrs-error")).to_contain_text("not an IP address or CIDR range")
    expect(dialog.locator("#quota_micro-error")).to_contain_text("number of credits")
    expect(dialog.locator("#rpm-error")).to_contain_text("at least 1")
    expect(dialog.get_by_label("Allowed IP addresses")).to_have_value("not-an-ip")
    assert [key["name"] for key in listed(server, "keys")] == ["Policy key"]


def test_key_policy_edit_errors_keep_the_key_as_it_was(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/keys")
    row = page.locator("tr", has_text="Policy key")
    public_id = row.get_attribute("id").removeprefix("key-")
    row.get_by_role("link", name="Edit").click()
    dialog = page.locator("dialog#key-dialog")
    dialog.wait_for(state="visible")
    expect(dialog.get_by_label("Requests per minute")).to_have_value("10")
    dialog.get_by_label("Requests per minute").fill("1.5")
    dialog.get_by_label("Concurrent requests").fill("0")
    refused(page, f"/keys/{public_id}/edit", lambda: dialog.get_by_role("button", name="Save").click())

    dialog = page.locator("dialog#key-dialog")
    expect(dialog.locator("#rpm-error")).to_contain_text("whole number")
    expect(dialog.locator("#max_concurrent-error")).to_contain_text("at least 1")
    expect(dialog.get_by_label("Requests per minute")).to_have_value("1.5")
    [after] = listed(server, "keys")
    assert (after["rpm"], after["max_concurrent"]) == (10, None)


def test_connection_form_errors_are_shown_and_nothing_is_added(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/catalog/connections/new")
    page.get_by_label("Name").fill("local-llm")
    page.get_by_label("Base URL").fill("ftp://models.example")
    page.get_by_label("API key").fill("sk-typed-secret")
    page.get_by_label("Read").fill("0")
    refused(page, "/catalog/connections/new", lambda: page.get_by_role("button", name="Save connection").click())

    expect(page.get_by_role("alert")).to_have_text("Please correct the marked fields.")
    expect(page.locator("#base_url-error")).to_contain_text("must start with http:// or https://")
    expect(page.locator("#read_timeout-error")).to_contain_text("Enter a number above 0")
    expect(page.get_by_label("Name")).to_have_value("local-llm")
    expect(page.get_by_label("API key")).to_have_value("")  # a typed key is not sent back
    assert [c["name"] for c in listed(server, "connections")] == ["demo"]


def test_model_form_errors_are_shown_and_nothing_is_added(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/catalog/models/new")
    page.get_by_label("Model id").fill("my model")
    for name in ("chat", "embeddings", "tools", "vision"):
        page.get_by_label(name, exact=True).uncheck()
    refused(page, "/catalog/models/new", lambda: page.get_by_role("button", name="Save model").click())

    expect(page.locator("#public_id-error")).to_contain_text("no spaces")
    expect(page.get_by_text("Choose at least one capability.")).to_be_visible()
    expect(page.get_by_label("Model id")).to_have_value("my model")
    assert listed(server, "models") == []


def test_user_create_errors_are_shown_in_place(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/users")
    page.evaluate(UNCHANGED_MARK)
    page.get_by_label("User name").fill("OWNER")
    page.get_by_label("Initial password").fill("another-password")
    refused(page, "/users", lambda: page.get_by_role("button", name="Create user").click())

    expect(page.get_by_role("alert")).to_have_text("A user with this name exists already.")
    expect(page.get_by_label("User name")).to_have_value("OWNER")
    assert page.evaluate("window.__sameDocument") is True
    page.reload()
    expect(page.locator("tbody tr")).to_have_count(1)


def test_password_change_errors_keep_the_old_password(owner_page, server, chromium):
    page = owner_page
    page.goto(f"{server.url}/account")
    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("brand-new-password")
    page.get_by_label("Repeat new password").fill("brand-new-password")
    refused(page, "/account/password", lambda: page.get_by_role("button", name="Change password").click())
    expect(page.get_by_role("alert")).to_have_text("The current password is not correct.")

    page.get_by_label("Current password").fill(OWNER[1])
    page.get_by_label("New password", exact=True).fill("brand-new-password")
    page.get_by_label("Repeat new password").fill("another-new-password")
    refused(page, "/account/password", lambda: page.get_by_role("button", name="Change password").click())
    expect(page.get_by_role("alert")).to_have_text("The passwords do not match.")

    other = chromium.new_context(locale="en-US")
    try:
        login(other.new_page(), server.url, *OWNER)  # the old password still works
    finally:
        other.close()


def test_retention_errors_are_shown_and_the_period_stays(owner_page, server):
    page = owner_page
    page.goto(f"{server.url}/usage")
    kept = page.get_by_text(re.compile(r"Request logs are kept for \d+ days")).inner_text()
    page.get_by_label("Keep request logs for (days)").fill("0")
    refused(page, "/usage/retention", lambda: page.get_by_role("button", name="Save", exact=True).click())

    expect(page.locator("#retention-error")).to_have_text("Enter between 1 and 3650 days.")
    expect(page.get_by_label("Keep request logs for (days)")).to_have_value("0")
    expect(page.get_by_label("Keep request logs for (days)")).to_have_attribute("aria-invalid", "true")
    page.goto(f"{server.url}/usage")
    expect(page.get_by_text(re.compile(r"Request logs are kept for \d+ days"))).to_have_text(kept)


def test_login_with_a_wrong_password_stays_on_the_login_page(page, server):
    page.goto(f"{server.url}/login")
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("Password").fill("some-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Unknown user name or wrong password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{server.url}/keys")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_setup_errors_are_shown_and_no_owner_is_created(page, live_server):
    page.goto(f"{live_server.url}/setup")
    token = re.search(r"Setup token: (\S+)", live_server.cli("init").stdout).group(1)
    page.get_by_label("Setup token").fill(token)
    page.get_by_label("User name").fill("anna")
    page.get_by_label("Password", exact=True).fill("anna-password-1")
    page.get_by_label("Repeat password").fill("anna-password-2")
    refused(page, "/setup", lambda: page.get_by_role("button", name="Create owner account").click())

    expect(page.get_by_role("alert")).to_have_text("The passwords do not match.")
    expect(page.get_by_label("User name")).to_have_value("anna")
    page.goto(f"{live_server.url}/keys")
    expect(page).to_have_url(re.compile(r"/setup$"))  # still no owner
