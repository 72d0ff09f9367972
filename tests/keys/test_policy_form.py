"""The policy fields of the create and edit dialogs (issue 4): catalog models as checkboxes, restriction
badges and the quota meter in the table."""
import re

import pytest
from support.web import csrf_token


@pytest.fixture
def catalog(app):
    """Two catalog models on the demo connection: 'demo' (enabled) and 'old-model' (disabled)."""
    from app.catalog import service as catalog_service

    with app.app_context():
        catalog_service.create_connection({"name": "demo", "kind": "demo", "base_url": ""})
        catalog_service.create_model({"public_id": "demo", "display_name": "Demo model"}, "demo")
        catalog_service.create_model({"public_id": "old-model", "display_name": "Old"}, "demo", enabled=False)


def test_create_form_offers_catalog_models_and_saves_the_ticked_ones(client_as, catalog, app):
    client = client_as("owner")
    form = client.get("/keys/new").get_data(as_text=True)
    boxes = {m.group(1) for m in re.finditer(r'name="models" value="([^"]*)"', form)}
    assert boxes == {"demo", "old-model"}
    assert "Demo model" in form and ">disabled<" in form
    assert re.search(r'<details class="limits"\s*>', form)  # collapsed for a plain new key
    response = client.post("/keys/new", data={"csrf_token": csrf_token(client, "/keys"), "name": "DMS",
                                               "models": ["demo"], "allowed_cidrs": "10.1.0.0/16",
                                               "quota": "100", "scope": "llm", "rpm": "30"})
    assert response.status_code == 200
    page = client.get("/keys").get_data(as_text=True)
    assert "No model is enabled yet" not in page
    row = re.search(r'<tr id="key-[^"]+">.*?</tr>', page, re.S).group(0)
    assert "LLM only" in row and "1 model" in row and "1 IP range" in row and "Rate limits" in row
    assert 'title="demo"' in row and 'title="10.1.0.0/16"' in row and 'title="30 per minute"' in row
    assert '<meter class="quota" min="0" max="100000000" value="0"' in row
    assert "0 of 100 credits" in row


def test_edit_form_shows_the_keys_settings_open(client_as, catalog, make_key):
    public_id, _ = make_key("k", allowed_models=["demo", "gone-model"], quota_micro=2_500_000, rpm=5)
    form = client_as("owner").get(f"/keys/{public_id}/edit").get_data(as_text=True)
    assert re.search(r'<details class="limits"\s+open', form)
    ticked = set(re.findall(r'name="models" value="([^"]*)" checked', form))
    assert ticked == {"demo", "gone-model"}  # an id the catalog no longer has stays visible and ticked
    assert "not in the catalog" in form
    assert 'name="quota" inputmode="decimal" value="2.5"' in form and 'value="5"' in form


def test_used_quota_shows_in_the_meter(client_as, make_key, app):
    from app.extensions import db
    from app.keys.models import ApiKey

    public_id, _ = make_key("k", quota_micro=10_000_000)
    with app.app_context():
        db.session.query(ApiKey).filter_by(public_id=public_id).update({"used_micro": 8_500_000})
        db.session.commit()
    row = client_as("auditor").get("/keys").get_data(as_text=True)
    assert 'value="8500000"' in row and "8.5 of 10 credits" in row


def test_monthly_quota_meter_starts_at_zero_in_a_new_month(client_as, make_key, app):
    """A monthly quota renews on the key's first request of a month; until then the table must not show last
    month's use as this month's."""
    from app.extensions import db
    from app.keys.models import ApiKey
    from app.policy.budget import period_of

    renewed, _ = make_key("renewed", quota_micro=10_000_000, quota_monthly=True)
    stale, _ = make_key("stale", quota_micro=10_000_000, quota_monthly=True)
    with app.app_context():
        keys = db.session.query(ApiKey)
        keys.filter_by(public_id=renewed).update({"used_micro": 8_500_000, "quota_period": period_of()})
        keys.filter_by(public_id=stale).update({"used_micro": 8_500_000, "quota_period": "2000-01"})
        db.session.commit()
    page = client_as("auditor").get("/keys").get_data(as_text=True)
    rows = {public_id: re.search(rf'<tr id="key-{public_id}">.*?</tr>', page, re.S).group(0)
            for public_id in (renewed, stale)}
    assert 'value="8500000"' in rows[renewed] and "8.5 of 10 credits" in rows[renewed]
    assert '<meter class="quota" min="0" max="10000000" value="0"' in rows[stale]
    assert "8.5 of" not in rows[stale] and "0 of 10 credits" in rows[stale]  # ("8.5" may be in a timestamp)
