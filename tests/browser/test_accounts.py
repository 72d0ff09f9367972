"""Accounts in real Chromium: first-run setup with the token from `pforte init`, login and logout,
and owners managing users through the HTMX forms."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from support.browser import login

pytestmark = pytest.mark.browser


def setup_token(server) -> str:
    output = server.cli("init").stdout
    return re.search(r"Setup token: (\S+)", output).group(1)


def test_setup_creates_the_owner_who_then_logs_out_and_in(page, live_server):
    page.goto(f"{live_server.url}/keys")
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.get_by_label("Setup token").fill("not-the-token")
    page.get_by_label("User name").fill("anna")
    page.get_by_label("Password", exact=True).fill("anna-password-1")
    page.get_by_label("Repeat password").fill("anna-password-1")
    page.get_by_role("button", name="Create owner account").click()
    expect(page.get_by_role("alert")).to_contain_text("The setup token is not correct")

    page.get_by_label("Setup token").fill(setup_token(live_server))
    page.get_by_label("Password", exact=True).fill("anna-password-1")
    page.get_by_label("Repeat password").fill("anna-password-1")
    page.get_by_role("button", name="Create owner account").click()
    expect(page).to_have_url(re.compile(r"/keys$"))
    expect(page.get_by_role("link", name="anna (Owner)")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{live_server.url}/setup")
    expect(page).to_have_url(re.compile(r"/login$"))  # setup is closed for good
    login(page, live_server.url, "anna", "anna-password-1")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()


def test_wrong_passwords_are_throttled_with_a_clear_message(page, admin_server):
    page.goto(f"{admin_server.url}/login")
    for _ in range(5):
        page.get_by_label("User name").fill("owner")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Unknown user name or wrong password.")
    page.get_by_label("User name").fill("owner")
    page.get_by_label("Password").fill("owner-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed attempts")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_owner_adds_disables_and_resets_a_user_without_reloading(logged_in_page, admin_server, chromium):
    page = logged_in_page
    page.get_by_role("link", name="Users").click()
    page.wait_for_url(f"{admin_server.url}/users", wait_until="load")  # htmx is bound to the forms by then
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    page.get_by_label("User name").fill("bodo")
    page.get_by_label("Role", exact=True).select_option("auditor")
    page.get_by_label("Initial password").fill("bodo-password-1")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("User bodo was created.")
    row = page.locator("tr", has_text="bodo")
    expect(row).to_contain_text("Auditor")

    page.get_by_label("User name").fill("BODO")  # names are unique regardless of case
    page.get_by_label("Initial password").fill("another-password")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert")).to_have_text("A user with this name exists already.")
    expect(page.get_by_label("User name")).to_have_value("BODO")

    row.get_by_role("button", name="Disable bodo").click()
    expect(page.get_by_role("status")).to_have_text("User bodo was disabled.")
    expect(page.locator("tr", has_text="bodo")).to_contain_text("Disabled")

    row = page.locator("tr", has_text="bodo")
    row.get_by_role("button", name="Enable bodo").click()
    expect(page.get_by_role("status")).to_have_text("User bodo was enabled.")
    row = page.locator("tr", has_text="bodo")
    row.get_by_text("Reset password").click()
    row.get_by_label("New password for bodo").fill("bodo-new-password")
    row.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("status")).to_contain_text("A new password was set for bodo.")
    assert page.evaluate("window.__sameDocument") is True

    other = chromium.new_context(locale="en-US")
    try:
        bodo = other.new_page()
        login(bodo, admin_server.url, "bodo", "bodo-new-password")
        bodo.goto(f"{admin_server.url}/users")
        expect(bodo.get_by_text("Only owners can add users or change them.")).to_be_visible()
        expect(bodo.get_by_role("button", name="Create user")).to_have_count(0)
    finally:
        other.close()


def test_a_message_from_the_last_page_load_gives_way_to_the_next_change(logged_in_page, admin_server):
    """A change made without htmx (a plain form post) flashes its message into the next page; the next change
    that htmx swaps in replaces it instead of standing beside it."""
    page = logged_in_page
    page.goto(f"{admin_server.url}/users")
    page.get_by_label("User name").fill("carla")
    page.get_by_label("Initial password").fill("carla-password-1")
    with page.expect_navigation():  # form.submit() bypasses htmx: a full post/redirect/get
        page.evaluate("document.querySelector('#users-panel form[action$=\"/users\"]').submit()")
    expect(page.get_by_role("status")).to_have_text("User carla was created.")

    page.locator("tr", has_text="carla").get_by_role("button", name="Disable carla").click()
    expect(page.get_by_role("status")).to_have_text("User carla was disabled.")  # one status, the new one


def test_the_audit_trail_shows_logins_and_downloads_as_csv(logged_in_page, admin_server):
    page = logged_in_page
    page.get_by_role("link", name="Audit trail").click()
    expect(page.locator("tbody tr").first).to_contain_text("login.success")
    page.get_by_label("Action").select_option("login.success")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=login\.success"))
    expect(page.locator("tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert text.splitlines()[0].startswith("time_utc,actor,action")
    assert ",login.success," in text and "user.create" not in text
