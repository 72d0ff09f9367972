"""The keys pages through the Flask test client, per role: list, filter, create, edit, disable, enable,
revoke."""
import re
from datetime import datetime

import pytest
from support.web import csrf_token

HX = {"HX-Request": "true"}


def _post(client, url, data=None, headers=None, token_page="/keys"):
    return client.post(url, data={"csrf_token": csrf_token(client, token_page), **(data or {})},
                       headers=headers or {})


def _new_key_in(html: str) -> str:
    match = re.search(r'id="new-key" value="([^"]+)"', html)
    assert match, "the new key is not on the page"
    return match.group(1)


def _field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


@pytest.fixture
def stored(app):
    """stored(public_id=None) → the key row(s) as the database holds them now."""
    from app.extensions import db
    from app.keys.models import ApiKey

    def read(public_id=None):
        with app.app_context():
            db.session.expire_all()
            if public_id:
                return db.session.query(ApiKey).filter_by(public_id=public_id).one()
            return db.session.query(ApiKey).order_by(ApiKey.id).all()

    return read


@pytest.mark.parametrize("role", ["owner", "admin", "auditor"])
def test_every_role_sees_the_table(client_as, make_key, role):
    make_key("DMS", expires_at=datetime(2031, 5, 6, 7, 8, 9))
    make_key("Portal")
    client = client_as(role)
    response = client.get("/keys")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for heading in ("Name", "Key prefix", "Created", "Expiration", "Status", "Last used"):
        assert f">{heading}</th>" in html
    assert "DMS" in html and "Portal" in html and "Never expires" in html and "May 6, 2031" in html
    assert html.count('class="badge badge-active"') == 2
    can_edit = role != "auditor"
    assert ("Create key" in html) is can_edit
    assert ('hx-post="/keys/' in html) is can_edit
    assert (">Revoke<" in html) is can_edit


def test_create_without_javascript_shows_the_key_once(owner_client, stored, app):
    response = _post(owner_client, "/keys/new", {"name": "  DMS  ", "expires": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    plaintext = _new_key_in(html)
    assert "will not be shown again" in html and 'data-copy-target="#new-key"' in html
    [key] = stored()
    assert key.name == "DMS" and plaintext.startswith(key.prefix) and key.created_by_id is not None
    # Nowhere again: not in the list, not in the edit form, not in the revoke page.
    for url in ("/keys", f"/keys/{key.public_id}/edit", f"/keys/{key.public_id}/revoke"):
        assert plaintext not in owner_client.get(url).get_data(as_text=True)
    assert plaintext[len(key.prefix):] not in owner_client.get("/keys").get_data(as_text=True)
    with app.app_context():
        from app.keys.verify import verify_key

        assert verify_key(plaintext).public_id == key.public_id


def test_create_with_htmx_answers_with_the_dialog_and_refreshes_the_table(owner_client, stored):
    response = _post(owner_client, "/keys/new", {"name": "Portal"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and 'data-auto-open' in html and 'hx-history="false"' in html
    assert response.headers["HX-Trigger"] == "keys-changed"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers.get("Vary", "")
    assert _new_key_in(html).startswith(stored()[0].prefix)


def test_create_dialog_and_page_have_real_urls(owner_client):
    page = owner_client.get("/keys/new")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    dialog = owner_client.get("/keys/new", headers=HX).get_data(as_text=True)
    assert "<html" not in dialog and dialog.lstrip().startswith("<dialog")


def test_create_validation_messages(owner_client, stored):
    data = {"name": "   ", "expires": "2001-02-03", "allowed_cidrs": "10.0.0.0/8\n10.0.0.0/33",
            "quota": "lots", "rpm": "0", "rph": "1.5", "scope": "root"}
    response = _post(owner_client, "/keys/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    errors = _field_errors(html)
    assert any("Enter a name" in e for e in errors)
    assert any("must lie in the future" in e for e in errors)
    assert any("10.0.0.0/33" in e and "not an IP address or CIDR range" in e for e in errors)
    assert any("number of credits" in e for e in errors)
    assert any("at least 1" in e for e in errors)
    assert any("whole number" in e for e in errors)
    assert any("permission modes" in e for e in errors)
    assert 'value="10.0.0.0/8\n10.0.0.0/33"' in html or "10.0.0.0/8\n10.0.0.0/33</textarea>" in html  # kept
    assert stored() == []
    # With htmx the dialog comes back (status 422, which htmx swaps) holding the same messages.
    fragment = _post(owner_client, "/keys/new", data, headers=HX)
    assert fragment.status_code == 422 and "<html" not in fragment.get_data(as_text=True)
    assert _field_errors(fragment.get_data(as_text=True)) == errors


def test_name_longer_than_100_characters_is_refused(owner_client, stored):
    response = _post(owner_client, "/keys/new", {"name": "n" * 101})
    assert response.status_code == 422 and "at most 100" in response.get_data(as_text=True)
    assert stored() == []


def test_post_without_csrf_token_is_refused(owner_client, stored, make_key):
    response = owner_client.post("/keys/new", data={"name": "sneaky"})
    assert response.status_code == 400
    public_id, _ = make_key("victim")
    assert owner_client.post(f"/keys/{public_id}/revoke", data={}).status_code == 400
    assert owner_client.post(f"/keys/{public_id}/revoke", data={}, headers=HX).status_code == 400
    assert [k.name for k in stored()] == ["victim"] and stored(public_id).status == "active"


def test_auditor_reads_but_every_change_is_forbidden(client_as, make_key, stored):
    public_id, _ = make_key("DMS")
    auditor = client_as("auditor")
    assert auditor.get("/keys").status_code == 200
    assert auditor.get("/keys/new").status_code == 403
    assert auditor.get(f"/keys/{public_id}/edit").status_code == 403
    assert auditor.get(f"/keys/{public_id}/revoke").status_code == 403
    for url, data in [("/keys/new", {"name": "x"}), (f"/keys/{public_id}/edit", {"name": "renamed"}),
                      (f"/keys/{public_id}/disable", {}), (f"/keys/{public_id}/enable", {}),
                      (f"/keys/{public_id}/revoke", {})]:
        for headers in ({}, HX):
            assert _post(auditor, url, data, headers=headers).status_code == 403, url
    key = stored(public_id)
    assert (key.name, key.status) == ("DMS", "active") and len(stored()) == 1


def test_disable_and_enable_swap_the_row(owner_client, make_key, stored):
    public_id, _ = make_key("DMS")
    response = _post(owner_client, f"/keys/{public_id}/disable", {"next": "/keys?status=active"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith("<tr")
    assert f'id="key-{public_id}"' in html and ">Disabled<" in html and ">Enable<" in html
    assert stored(public_id).status == "disabled"
    response = _post(owner_client, f"/keys/{public_id}/enable", {"next": "/keys?status=active"}, headers=HX)
    assert ">Active<" in response.get_data(as_text=True) and stored(public_id).status == "active"


def test_disable_without_javascript_redirects_back_to_the_list(owner_client, make_key, stored):
    public_id, _ = make_key("DMS")
    response = _post(owner_client, f"/keys/{public_id}/disable", {"next": "/keys?status=active&page=2"})
    assert response.status_code == 302 and response.headers["Location"] == "/keys?status=active&page=2"
    assert stored(public_id).status == "disabled"
    page = owner_client.get("/keys").get_data(as_text=True)
    assert "Key “DMS” disabled." in page


@pytest.mark.parametrize("evil", ["https://evil.example/keys", "//evil.example/keys", "/account",
                                  "javascript:x"])
def test_return_address_stays_on_the_keys_page(owner_client, make_key, evil):
    public_id, _ = make_key("DMS")
    response = _post(owner_client, f"/keys/{public_id}/disable", {"next": evil})
    assert response.headers["Location"] == "/keys"


def test_revoke_confirmation_page_and_post(owner_client, make_key, stored, app):
    public_id, plaintext = make_key("DMS")
    confirm = owner_client.get(f"/keys/{public_id}/revoke?next=/keys")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "cannot be undone" in html and "<html" in html
    dialog = owner_client.get(f"/keys/{public_id}/revoke", headers=HX).get_data(as_text=True)
    assert "<dialog" in dialog and "data-auto-open" in dialog and "<html" not in dialog
    response = _post(owner_client, f"/keys/{public_id}/revoke", {"next": "/keys"})
    assert response.status_code == 302
    assert stored(public_id).status == "revoked"
    page = owner_client.get("/keys?status=revoked").get_data(as_text=True)
    assert "DMS" in page and ">Revoked<" in page
    assert f"/keys/{public_id}/edit" not in page  # no more actions on a revoked key
    with app.app_context():
        from app.keys.verify import verify_key

        assert verify_key(plaintext).reason == "revoked"


def test_revoke_with_htmx_closes_the_dialog_and_refreshes(owner_client, make_key, stored):
    public_id, _ = make_key("DMS")
    response = _post(owner_client, f"/keys/{public_id}/revoke", headers=HX)
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    assert response.headers["HX-Trigger"] == "keys-changed"
    assert stored(public_id).status == "revoked"


def test_edit_renames_and_sets_policy(owner_client, make_key, stored):
    public_id, _ = make_key("old", expires_at=datetime(2031, 1, 2))
    form = owner_client.get(f"/keys/{public_id}/edit").get_data(as_text=True)
    assert 'value="old"' in form and 'value="2031-01-02"' in form
    response = _post(owner_client, f"/keys/{public_id}/edit",
                     {"name": "new", "expires": "2031-01-02", "scope": "read", "models": ["m1", "m2"],
                      "allowed_cidrs": "192.0.2.0/24\n2001:db8::/48", "quota": "2.5", "quota_monthly": "on",
                      "rpm": "5", "rph": "", "monthly_requests": "1000", "max_concurrent": "2"})
    assert response.status_code == 302
    key = stored(public_id)
    assert (key.name, key.scope, key.allowed_models, key.allowed_cidrs) == (
        "new", "read", "m1,m2", "192.0.2.0/24,2001:db8::/48")
    limits = (key.quota_micro, key.quota_monthly, key.rpm, key.rph, key.monthly_requests, key.max_concurrent)
    assert limits == (2_500_000, True, 5, None, 1000, 2)
    assert key.expires_at == datetime(2031, 1, 2)


def test_unchanged_date_in_another_time_zone_keeps_the_exact_expiry(owner_client, make_key, stored):
    """Set on the command line as 00:00 UTC; an admin in Berlin sees that day and saves without
    touching it."""
    public_id, _ = make_key("k", expires_at=datetime(2031, 1, 2, 0, 0, 0))
    owner_client.set_cookie("pforte_tz", "Europe/Berlin")
    form = owner_client.get(f"/keys/{public_id}/edit").get_data(as_text=True)
    assert 'value="2031-01-02"' in form
    assert _post(owner_client, f"/keys/{public_id}/edit", {"name": "renamed", "expires": "2031-01-02"}
                 ).status_code == 302
    assert stored(public_id).expires_at == datetime(2031, 1, 2, 0, 0, 0)


def test_expiry_date_means_midnight_in_the_admins_time_zone(owner_client, stored):
    owner_client.set_cookie("pforte_tz", "Europe/Berlin")
    _post(owner_client, "/keys/new", {"name": "k", "expires": "2031-07-01"})
    assert stored()[0].expires_at == datetime(2031, 6, 30, 22, 0, 0)  # CEST is UTC+2
    assert "Jul 1, 2031, 12:00:00" in owner_client.get("/keys").get_data(as_text=True)


def test_edit_errors_keep_the_input(owner_client, make_key, stored):
    public_id, _ = make_key("old")
    response = _post(owner_client, f"/keys/{public_id}/edit", {"name": "", "allowed_cidrs": "not-an-ip"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "not-an-ip</textarea>" in html
    assert "Enter a name" in html and "not an IP address" in html
    assert stored(public_id).name == "old"


def test_unknown_key_is_404(owner_client):
    assert owner_client.get("/keys/key_nope/edit").status_code == 404
    assert _post(owner_client, "/keys/key_nope/disable").status_code == 404


def test_filter_search_and_pages(owner_client, make_key, app):
    for i in range(30):
        make_key(f"service {i:02d}")
    other_id, _ = make_key("translation")
    _post(owner_client, f"/keys/{other_id}/disable")
    first = owner_client.get("/keys").get_data(as_text=True)
    assert "31 keys" in first and "Page 1 of 2" in first and 'rel="next"' in first
    second = owner_client.get("/keys?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    assert second.count("<tr id=") == 6
    found = owner_client.get("/keys?q=TRANSL").get_data(as_text=True)
    assert "1 key" in found and "translation" in found and "service 00" not in found
    disabled = owner_client.get("/keys?status=disabled").get_data(as_text=True)
    assert disabled.count("<tr id=") == 1 and "translation" in disabled
    none = owner_client.get("/keys?status=revoked").get_data(as_text=True)
    assert "No key matches this filter." in none
    # HTMX gets the table fragment, which knows how to refresh itself with the same filter.
    fragment = owner_client.get("/keys?status=active&page=2", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="keys-table"')
    assert 'hx-get="/keys?status=active&amp;page=2"' in fragment
    # htmx restoring history asks for the whole page.
    restore = owner_client.get("/keys?page=2", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)
    # Nonsense parameters fall back to sensible defaults.
    assert owner_client.get("/keys?page=abc&status=weird").status_code == 200


def test_page_says_when_no_model_is_enabled(owner_client, app):
    from app.catalog import service

    with app.app_context():
        count = service.enabled_model_count()
    assert count == 0
    assert "No model is enabled yet" in owner_client.get("/keys").get_data(as_text=True)
