"""Accessibility (WCAG 2.1 AA) of every page: axe-core (the npm package in tests/node) runs in the page
and must find no serious or critical violation. Every page reached from the navigation, the pages linked
from those, the integrator pages and the error page are audited, logged out and logged in, with dialogs
open too. The app's CSP stays on: a script tag added by the test would be refused, so the test evaluates
axe's source through the DevTools protocol (which CSP does not govern), and any CSP violation the page
itself causes is reported as well.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from support.browser import login
from support.demo_gateway import OWNER, running_demo

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
SKIP_LINKS = ("/logout", "/language", "/static/", "/v1/", ".csv", "/export", "/metrics", "/healthz",
              "/readyz")
MAX_PAGES = 60


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        if os.environ.get("PFORTE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{AXE} is missing: run npm install in tests/node")
        pytest.skip("axe-core is not installed (npm install in tests/node)")
    return AXE.read_text()


class Auditor:
    """Runs axe on pages and collects every blocking finding (and CSP violation) with its page."""

    def __init__(self, page, source: str):
        self.page = page
        self.source = source
        self.findings: list[str] = []
        self.audited: list[str] = []
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.findings.append(f"{self.page.url}: CSP violation: {message.text[:200]}")

    def audit(self, label: str | None = None) -> None:
        page = self.page
        if page.evaluate("typeof window.axe") == "undefined":
            page.evaluate(self.source)
        options = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
        result = page.evaluate("(options) => axe.run(document, options)", options)
        where = label or urlsplit(page.url).path
        self.audited.append(where)
        for violation in result["violations"]:
            if violation["impact"] in BLOCKING:
                targets = [", ".join(node["target"]) for node in violation["nodes"][:4]]
                self.findings.append(f"{where}: {violation['id']} ({violation['impact']}): "
                                     f"{violation['help']} → {targets}")

    def visit(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.audit()
        self.check_skip_link()
        self.check_dialogs()

    def check_skip_link(self) -> None:
        """"Skip to content" comes first in the tab order and moves keyboard focus into the main content."""
        page = self.page
        first = page.evaluate("""() => {
            const focusable = document.querySelectorAll('a[href], button, input:not([type=hidden]), ' +
                'select, textarea, [tabindex]:not([tabindex="-1"])');
            const first = [...focusable].find(e => !e.disabled);
            return first ? first.textContent.trim() : null;
        }""")
        if first != "Skip to content":
            self.findings.append(f"{page.url}: the first focusable element is {first!r}, not the skip link")
            return
        page.get_by_role("link", name="Skip to content").focus()
        page.keyboard.press("Enter")
        if page.evaluate("document.activeElement.id") != "main":
            self.findings.append(f"{page.url}: the skip link does not move focus to the main content")

    def check_dialogs(self) -> None:
        """Each dialog opens from the keyboard, holds focus, passes axe, and gives focus back on Escape."""
        page = self.page
        openers = page.locator("[data-open-dialog]:visible")
        for index in range(min(openers.count(), 3)):
            opener = openers.nth(index)
            selector = opener.get_attribute("data-open-dialog")
            opener.focus()
            page.keyboard.press("Enter")
            dialog = page.locator(selector)
            if not dialog.evaluate("d => d.open"):
                self.findings.append(f"{page.url}: {selector} did not open from the keyboard")
                continue
            if not dialog.evaluate("d => d.contains(document.activeElement)"):
                self.findings.append(f"{page.url}: focus is not inside {selector} when it opens")
            for _ in range(12):  # Tab round the dialog: focus must stay inside (modal)
                page.keyboard.press("Tab")
                if not dialog.evaluate("d => d.contains(document.activeElement)"):
                    self.findings.append(f"{page.url}: Tab leaves the open dialog {selector}")
                    break
            self.audit(f"{urlsplit(page.url).path} with {selector} open")
            page.keyboard.press("Escape")
            if dialog.evaluate("d => d.open"):
                self.findings.append(f"{page.url}: Escape does not close {selector}")
            elif not opener.evaluate("b => b === document.activeElement"):
                self.findings.append(f"{page.url}: focus does not return to the opener of {selector}")

    def links(self, base: str) -> list[str]:
        hrefs = self.page.eval_on_selector_all("main a[href], header a[href]", "as => as.map(a => a.href)")
        found = []
        for href in hrefs:
            parts = urlsplit(href)
            if not href.startswith(base) or any(s in parts.path for s in SKIP_LINKS):
                continue
            found.append(f"{base}{parts.path}{'?' + parts.query if parts.query else ''}")
        return found

    def report(self) -> str:
        return "\n".join(self.findings)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with running_demo(tmp_path_factory.mktemp("axe")) as (server, gateway):
        for text in ("Guten Tag", "Wie spät ist es?"):
            assert gateway.chat(text).status_code == 200
        assert gateway.chat("x", model="no-such-model").status_code == 404
        yield server, gateway


def test_axe_finds_a_planted_violation(page, demo, axe_source):
    """The audit itself works: an unlabeled field and an image without text are reported."""
    _server, gateway = demo
    auditor = Auditor(page, axe_source)
    page.goto(f"{gateway.url}/docs")
    page.evaluate("""() => {
        const main = document.getElementById('main');
        main.insertAdjacentHTML('beforeend', '<input type="text"><img src="/static/none.png">');
    }""")
    auditor.audit()
    assert any("label" in finding for finding in auditor.findings), auditor.report()
    assert any("image-alt" in finding for finding in auditor.findings), auditor.report()


def test_setup_page(page, live_server, axe_source):
    auditor = Auditor(page, axe_source)
    auditor.visit(f"{live_server.url}/setup")
    assert auditor.audited and not auditor.findings, auditor.report()


def test_pages_without_login(page, demo, axe_source):
    _server, gateway = demo
    auditor = Auditor(page, axe_source)
    for path in ("/login", "/use", "/playground", "/docs"):
        auditor.visit(f"{gateway.url}{path}")
    auditor.visit(f"{gateway.url}/login")
    page.get_by_role("button", name="Log in").click()  # empty form: the browser's own validation
    auditor.audit("/login after an empty submit")
    assert not auditor.findings, auditor.report()


def test_every_page_when_logged_in(page, demo, axe_source):
    server, gateway = demo
    auditor = Auditor(page, axe_source)
    login(page, gateway.url, *OWNER)
    nav = page.eval_on_selector_all("nav[aria-label=Main] a", "as => as.map(a => a.href)")
    assert len(nav) >= 4, nav
    extra = [f"{gateway.url}{path}" for path in (
        "/account", f"/usage/keys/{gateway.key_id}", f"/usage?key={gateway.key_id}&model={gateway.model}",
        "/use", "/playground", "/docs", "/no-such-page")]
    queue = list(dict.fromkeys(nav + extra))
    seen: set[str] = set()
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        auditor.visit(url)
        if url in nav:  # one level deeper: the pages the navigation pages link to
            queue.extend(link for link in auditor.links(gateway.url) if link not in seen)
    assert len(seen) >= len(nav) + len(extra) - 1
    assert not auditor.findings, auditor.report()


def test_integrator_pages_in_use(page, demo, axe_source):
    """The states JavaScript creates: a stored key with filled-in examples, a streamed reply, an API error."""
    _server, gateway = demo
    auditor = Auditor(page, axe_source)
    page.goto(f"{gateway.url}/use")
    page.get_by_label("Paste an API key").fill(gateway.key)
    page.get_by_role("button", name="Keep in this browser").click()
    expect(page.locator("#example-model")).to_have_value(gateway.model)
    page.get_by_label("Show the whole key in the examples").check()
    auditor.audit("/use with a stored key")

    page.goto(f"{gateway.url}/playground")
    expect(page.get_by_label("Model")).to_have_value(gateway.model)
    page.get_by_label("Your message").fill("Hallo")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_have_text("Reply complete.", timeout=20_000)
    auditor.audit("/playground after a reply")

    page.evaluate("localStorage.setItem('pforte.apiKey', 'sk-pf-wrong')")
    page.reload()
    page.get_by_label("Your message").fill("Hallo")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid_api_key")
    auditor.audit("/playground with an API error")
    assert not auditor.findings, auditor.report()
