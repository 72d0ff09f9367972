"""The organisation settings page: owners set the monthly allowance and the per-IP limit; every change is
an audit event with before and after; bad input is answered with a message and nothing is lost."""
from __future__ import annotations

import json

import pytest
from support.web import csrf_token

FORM = {"allowance": "", "per_ip_count": "", "per_ip_unit": "minute"}


def save(client, htmx=False, **values):
    data = {**FORM, **values, "csrf_token": csrf_token(client, "/settings")}
    return client.post("/settings", data=data, headers={"HX-Request": "true"} if htmx else {})


def stored(app):
    from app.settings import service

    with app.app_context():
        return service.current()


def test_owner_sets_allowance_and_per_ip_limit(app, owner_client, audit_log):
    response = save(owner_client, allowance="2500.5", per_ip_count="120", per_ip_unit="hour")
    assert response.status_code == 302
    settings = stored(app)
    assert settings.allowance_micro == 2_500_500_000
    assert settings.per_ip_limit == "120/hour"
    page = owner_client.get("/settings").get_data(as_text=True)
    assert 'value="2500.5"' in page and 'value="120"' in page
    assert '<option value="hour" selected>' in page
    assert "The settings were saved." in page
    events = audit_log("settings.update")
    assert len(events) == 1
    before = {"org_allowance_credits": "unlimited", "per_ip_limit": "default"}
    assert json.loads(events[0]["before"]) == before
    assert json.loads(events[0]["after"]) == {"org_allowance_credits": "2500.5", "per_ip_limit": "120/hour"}
    assert events[0]["actor_name"] == "owner"


def test_clearing_the_fields_restores_unlimited_and_the_default(app, owner_client, audit_log):
    save(owner_client, allowance="10", per_ip_count="5", per_ip_unit="second")
    save(owner_client)
    settings = stored(app)
    assert settings.allowance_micro is None and settings.per_ip_limit is None
    last = audit_log("settings.update")[-1]
    assert json.loads(last["before"]) == {"org_allowance_credits": "10", "per_ip_limit": "5/second"}
    assert json.loads(last["after"]) == {"org_allowance_credits": "unlimited", "per_ip_limit": "default"}


def test_saving_unchanged_values_records_nothing(owner_client, audit_log):
    save(owner_client, allowance="7")
    save(owner_client, allowance="7,0")
    assert len(audit_log("settings.update")) == 1


@pytest.mark.parametrize("field,value", [
    ("allowance", "-5"), ("allowance", "lots"), ("allowance", "1.1234567"), ("allowance", "1e9"),
    ("allowance", "1000000000001"), ("per_ip_count", "0"), ("per_ip_count", "ten"), ("per_ip_count", "-3"),
    ("per_ip_unit", "fortnight"),
])
def test_bad_input_is_refused_with_a_message_and_kept(app, owner_client, audit_log, field, value):
    values = {"allowance": "100", "per_ip_count": "30", field: value}
    response = save(owner_client, **values)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="field-error"' in page and 'aria-invalid="true"' in page
    if field != "per_ip_unit":
        assert f'value="{value}"' in page  # what was typed is still there
    assert stored(app).allowance_micro is None and audit_log("settings.update") == []


def test_htmx_post_returns_the_fragment(owner_client):
    response = save(owner_client, htmx=True, allowance="42")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<div id="settings-panel">') and "<html" not in page
    assert "The settings were saved." in page
    assert "0 of 42 credits used" in page
    error = save(owner_client, htmx=True, allowance="x")
    assert error.status_code == 422 and 'id="allowance-error"' in error.get_data(as_text=True)


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_other_roles_read_but_cannot_change(app, client_as, role):
    client = client_as(role)
    page = client.get("/settings")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Only owners can change these settings." in text and 'name="allowance"' not in text
    token = csrf_token(client, "/settings")
    response = client.post("/settings", data={**FORM, "allowance": "1", "csrf_token": token})
    assert response.status_code == 403
    assert stored(app).allowance_micro is None


def test_page_needs_a_login(client, owner):
    assert client.get("/settings").status_code == 302


def test_post_without_csrf_token_is_refused(app, owner_client):
    response = owner_client.post("/settings", data={**FORM, "allowance": "1"})
    assert response.status_code == 400
    assert stored(app).allowance_micro is None


def test_page_shows_the_month_usage_against_the_allowance(app, owner_client):
    from app.extensions import db
    from app.policy import budget

    save(owner_client, allowance="10")
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(budget.SETTLE_ORG, {"p": budget.period_of(), "c": 8_500_000, "r": 0})
    page = owner_client.get("/settings").get_data(as_text=True)
    assert "8.5 of 10 credits used" in page
    assert 'value="8500000"' in page and 'max="10000000"' in page


def test_gateway_sees_a_change_at_once_in_this_process(app, owner_client):
    from app.settings import service

    with app.test_request_context():
        assert service.per_ip_limit() == "60/minute"
        assert service.org_allowance_micro() is None
    save(owner_client, allowance="3", per_ip_count="9", per_ip_unit="second")
    with app.test_request_context():
        assert service.per_ip_limit() == "9/second"
        assert service.org_allowance_micro() == 3_000_000


def test_invalid_server_default_falls_back_to_60_per_minute(app):
    from app.settings import service

    app.config["PFORTE_RATELIMIT_PER_IP"] = "sixty"
    with app.test_request_context():
        assert service.per_ip_limit() == "60/minute"


@pytest.mark.parametrize("text,micro", [("", None), ("0", 0), ("12.5", 12_500_000), ("12,5", 12_500_000),
                                        (" 1 000 ", 1_000_000_000), ("0.000001", 1)])
def test_credit_parsing(text, micro):
    from app.settings.service import format_credits, parse_credits

    assert parse_credits(text) == micro
    if micro is not None:
        assert parse_credits(format_credits(micro)) == micro
