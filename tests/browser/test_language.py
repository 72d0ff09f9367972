"""German in real Chromium: a German browser gets German pages; the switch in the top bar changes the
language at once and the choice follows the user to another browser."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from support.browser import login

pytestmark = pytest.mark.browser
OWNER = ("owner", "owner-password-1")


def test_a_german_browser_gets_german_pages(chromium, admin_server):
    context = chromium.new_context(locale="de-DE")
    try:
        page = context.new_page()
        page.goto(f"{admin_server.url}/login")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        page.get_by_label("Benutzername").fill(OWNER[0])
        page.get_by_label("Passwort").fill(OWNER[1])
        page.get_by_role("button", name="Anmelden").click()
        expect(page.get_by_role("heading", name="API-Schlüssel")).to_be_visible()
        nav = page.get_by_role("navigation", name="Hauptmenü")
        expect(nav.get_by_role("link", name="Prüfprotokoll")).to_be_visible()
        expect(nav.get_by_role("link", name="Benutzer")).to_be_visible()
        expect(page.get_by_role("button", name="Abmelden")).to_be_visible()
    finally:
        context.close()


def test_switching_to_german_is_remembered_for_the_user(logged_in_page, admin_server, chromium):
    page = logged_in_page
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_role("button", name="Deutsch").click()
    expect(page).to_have_url(re.compile(r"/audit"))  # back on the same page
    expect(page.get_by_role("heading", name="Prüfprotokoll")).to_be_visible()
    expect(page.get_by_role("columnheader", name=re.compile(r"^Zeit \("))).to_be_visible()

    other = chromium.new_context(locale="en-US")  # another browser, English, no cookie
    try:
        second = other.new_page()
        login(second, admin_server.url, *OWNER)
        expect(second.get_by_role("heading", name="API-Schlüssel")).to_be_visible()
        second.get_by_role("button", name="English").click()
        expect(second.get_by_role("heading", name="API keys")).to_be_visible()
    finally:
        other.close()
