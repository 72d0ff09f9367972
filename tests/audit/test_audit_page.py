"""The audit page: every role reads it; filters, pagination, local time and the before/after diff."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from support.web import post_form


@pytest.fixture
def add_event(app):
    """add_event(action, when=None, **fields) records an event through the audit service."""
    from app.audit import service
    from app.extensions import db

    def add(action: str, when: datetime | None = None, **fields):
        with app.app_context():
            event = service.record(action, **fields)
            if when is not None:
                event.created_at = when
            db.session.commit()

    return add


def rows(html: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    return [row for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "colspan" not in row]


def actions_in(html: str) -> list[str]:
    return [re.search(r"<code>([^<]+)</code>", row).group(1) for row in rows(html)]


@pytest.mark.parametrize("role", ["owner", "admin", "auditor"])
def test_every_role_reads_the_trail(client_as, role):
    html = client_as(role).get("/audit").get_data(as_text=True)
    assert "<h1>Audit trail</h1>" in html
    assert "login.success" in actions_in(html)


def test_user_changes_appear_with_actor_target_ip_and_diff(client_as, make_user):
    owner = client_as("owner")
    victim = make_user("victim", "admin")
    post_form(owner, f"/users/{victim}/role", {"role": "auditor"})
    html = owner.get("/audit?action=user.role_change").get_data(as_text=True)
    (row,) = rows(html)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[1] == "owner" and "victim" in cells[3] and cells[4] == "127.0.0.1"
    assert re.search(r"<dt>role</dt>\s*<dd><del>admin</del> → <ins>auditor</ins></dd>", cells[5])


def test_filters_by_action_actor_target_and_dates(client_as, add_event):
    add_event("key.create", when=datetime(2025, 3, 1, 9, 0), actor="anna", target_type="key", target_id=7,
              target_name="DMS production")
    add_event("key.revoke", when=datetime(2025, 3, 5, 9, 0), actor="bernd", target_type="key", target_id=7,
              target_name="DMS production")
    add_event("key.create", when=datetime(2025, 3, 9, 9, 0), actor="bernd", target_type="key", target_id=8,
              target_name="Portal 100%_test")
    owner = client_as("owner")

    def shown(query: str) -> list[str]:
        """actor:action of each row shown for this query string."""
        html = owner.get(f"/audit?{query}").get_data(as_text=True)
        cells = r"<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td><code>([^<]+)</code>"
        return [":".join(re.search(cells, row).groups()) for row in rows(html)]

    assert shown("action=key.create") == ["bernd:key.create", "anna:key.create"]
    assert shown("action=key.create&actor=ANN") == ["anna:key.create"]
    assert shown("target=dms") == ["bernd:key.revoke", "anna:key.create"]
    assert shown("target=8") == ["bernd:key.create"]
    assert shown("target=100%25_") == ["bernd:key.create"]  # LIKE wildcards are taken literally
    assert shown("target=l%25t") == []  # as a wildcard it would match "Portal 100%_test"
    assert shown("date_from=2025-03-02&date_to=2025-03-05") == ["bernd:key.revoke"]
    assert shown("date_from=2025-03-06&action=key.revoke") == []
    assert "key.revoke" in re.search(r'<select id="action" name="action">(.*?)</select>',
                                     owner.get("/audit").get_data(as_text=True), re.S).group(1)


def test_dates_are_days_in_the_users_time_zone(client_as, add_event):
    # 2025-03-01 23:30 UTC is already 2 March in Berlin (UTC+1).
    add_event("key.create", when=datetime(2025, 3, 1, 23, 30), actor="anna")
    owner = client_as("owner")
    post_form(owner, "/account/preferences", {"language": "en", "timezone": "Europe/Berlin"})
    html = owner.get("/audit?date_from=2025-03-02&date_to=2025-03-02").get_data(as_text=True)
    assert actions_in(html) == ["key.create"]
    assert "Time (Europe/Berlin)" in html
    assert "12:30:00" in rows(html)[0]  # 00:30 Berlin time in the 12-hour English format
    html = owner.get("/audit?date_from=2025-03-01&date_to=2025-03-01").get_data(as_text=True)
    assert actions_in(html) == []


def test_bad_filter_values_get_a_message_and_the_rest_still_applies(client_as):
    owner = client_as("owner")
    response = owner.get("/audit?date_from=31.12.2025&action=login.success&page=abc")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The start date must look like 2025-01-31." in html
    assert actions_in(html) == ["login.success"]
    html = owner.get("/audit?date_from=2025-02-01&date_to=2025-01-01").get_data(as_text=True)
    assert "The start date must not lie after the end date." in html


def test_pagination_keeps_the_filters(client_as, add_event, app):
    for n in range(120):
        add_event("key.rename", actor="robot", target_name=f"key {n:03d}")
    owner = client_as("owner")
    first = owner.get("/audit?action=key.rename").get_data(as_text=True)
    assert len(rows(first)) == 50 and "120 events" in first and "Page 1 of 3" in first
    next_link = re.search(r'href="([^"]+)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")
    assert "action=key.rename" in next_link and "page=2" in next_link
    last = owner.get("/audit?action=key.rename&page=3").get_data(as_text=True)
    assert len(rows(last)) == 20 and "Page 3 of 3" in last and 'rel="next"' not in last
    names = [re.search(r"key \d{3}", row).group(0) for row in rows(last)]
    assert names[-1] == "key 000"  # newest first, so the oldest is last
    assert "Page 3 of 3" in owner.get("/audit?action=key.rename&page=99").get_data(as_text=True)


def test_htmx_filtering_returns_only_the_fragment(client_as):
    owner = client_as("owner")
    response = owner.get("/audit?action=login.success", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="audit-events">') and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_secrets_never_reach_the_page(client_as, add_event):
    add_event("connection.update", actor="anna", before={"credential": "sk-upstream-old"},
              after={"credential": "sk-upstream-new", "name": "openai"})
    html = client_as("auditor").get("/audit").get_data(as_text=True)
    assert "sk-upstream" not in html and "[redacted]" in html
