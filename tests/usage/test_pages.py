"""The usage pages through the Flask test client: dashboard (full page and HTMX fragment), one key's
activity, and the owner-only retention setting."""
from __future__ import annotations

import re
from datetime import timedelta

from support.web import post_form

from app.database import utcnow


def test_auditor_sees_the_dashboard_with_charts_and_tables(client_as, make_key, log_request):
    key_id, public_id = make_key("Dokumentenmanagement")
    now = utcnow()
    log_request(now - timedelta(days=1), key_id, "demo-chat", input=30, output=12, micro=42_000_000)
    log_request(now, key_id, "demo-chat", status=429, error_code="rate_limit_exceeded")

    response = client_as("auditor").get("/usage")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert re.search(r'data-total="requests">\s*2<', html)
    assert re.search(r'data-total="tokens">\s*42<', html)
    assert re.search(r'data-total="credits">\s*42<', html)
    assert 'data-total="error-rate">50.0 %' in html
    for chart in ("chart-requests", "chart-tokens", "chart-credits"):
        assert f'id="{chart}"' in html and f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert "Dokumentenmanagement" in html and f"/usage/keys/{public_id}" in html
    assert "demo-chat" in html and ">429" in html
    assert 'name="retention_days"' not in html  # only owners change the retention period


def test_htmx_filter_request_gets_only_the_results_fragment(client_as):
    response = client_as("admin").get("/usage?start=2025-01-01&end=2025-01-07",
                                        headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="usage-results">') and "<html" not in html
    assert "2025-01-07" in html
    assert "HX-Request" in response.headers.get("Vary", "")


def test_bad_filter_shows_a_message_not_an_error_page(client_as):
    response = client_as("admin").get("/usage?start=31.12.2024&end=")
    assert response.status_code == 200
    assert "must be a date like" in response.get_data(as_text=True)


def test_key_activity_lists_the_last_50_requests_and_this_months_totals(client_as, make_key, log_request,
                                                                       add_monthly):
    key_id, public_id = make_key("Portal")
    other_id, _ = make_key("Other")
    now = utcnow()
    for i in range(55):
        log_request(now - timedelta(minutes=i), key_id, "demo-chat", input=i, output=1, client_ip="10.1.2.3",
                    endpoint="chat.completions")
    log_request(now, other_id, "demo-chat", client_ip="10.9.9.9")
    add_monthly(now.strftime("%Y-%m"), key_id, "demo-chat", requests=55, micro=3_500_000, input=1485,
                output=55)
    add_monthly("2000-01", key_id, "demo-chat", requests=999, micro=0)

    client = client_as("auditor")
    html = client.get(f"/usage/keys/{public_id}").get_data(as_text=True)

    table = html[html.index('id="recent-requests"'):]
    assert table.count("<tr>") == 51  # header + 50 rows
    assert "10.1.2.3" in table and "10.9.9.9" not in table
    assert ">0 / 1" in table and ">54 / 1" not in table  # newest first, the five oldest left out
    assert re.search(r'data-month="requests">\s*55<', html)
    assert re.search(r'data-month="credits">\s*3.5<', html)

    fragment = client.get(f"/usage/keys/{public_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="key-activity">')
    assert client.get("/usage/keys/doesnotexist").status_code == 404


def test_owner_sets_the_retention_period_with_an_audit_event(app, client_as, audit_log):
    owner = client_as("owner")
    response = post_form(owner, "/usage/retention", {"retention_days": "30"}, page="/usage",
                         follow_redirects=True)
    assert "kept for 30 days" in response.get_data(as_text=True)

    def retention(value: str) -> str:
        answer = post_form(owner, "/usage/retention", {"retention_days": value}, page="/usage",
                           follow_redirects=True)
        return answer.get_data(as_text=True)

    assert "Enter between 1 and 3650 days" in retention("0")
    assert "whole number" in retention("ten")

    with app.app_context():
        from app.usage import retention

        assert retention.retention_days() == 30
    events = audit_log("usage.retention")
    assert len(events) == 1 and '"retention_days": 30' in events[0]["after"]


def test_admins_cannot_change_the_retention_period(client_as):
    response = post_form(client_as("admin"), "/usage/retention", {"retention_days": "5"}, page="/usage")
    assert response.status_code == 403


def test_demo_models_are_marked_demo(app, client_as, make_key, log_request):
    from app.catalog import service

    with app.app_context():
        service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        service.create_model({"public_id": "demo-chat", "display_name": "Demo"}, "demo")
        service.create_connection({"name": "vllm", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"})
        service.create_model({"public_id": "local-chat", "display_name": "Local"}, "vllm")
    key_id, public_id = make_key("Portal")
    now = utcnow()
    log_request(now, key_id, "demo-chat", micro=2_000_000)
    log_request(now, key_id, "local-chat", micro=1_000_000)
    badge = ' <span class="badge badge-demo">demo</span>'

    client = client_as("auditor")
    html = client.get("/usage").get_data(as_text=True)
    assert '<option value="demo-chat" >demo-chat (demo)</option>' in html
    assert '<option value="local-chat" >local-chat</option>' in html
    models = html[html.index('id="top-models-table"'):]
    models = models[:models.index("</table>")]
    assert f'<th scope="row">demo-chat{badge}</th>' in models
    assert '<th scope="row">local-chat</th>' in models

    filtered = client.get("/usage?model=demo-chat").get_data(as_text=True)
    assert f"<strong>demo-chat</strong>{badge}" in filtered

    activity = client.get(f"/usage/keys/{public_id}").get_data(as_text=True)
    assert f"<td>demo-chat{badge}</td>" in activity and "<td>local-chat</td>" in activity
