"""The key form refuses allow-list entries that could never match, in the admin's language."""
from __future__ import annotations

from support.web import csrf_token

MESSAGE = ("is an IPv4-mapped IPv6 address, which never matches: clients with it are checked by their IPv4 "
           "address. Enter 192.0.2.1 instead.")


def test_the_key_form_refuses_an_ipv4_mapped_entry_with_a_clear_message(owner_client):
    form = {"name": "fenced", "allowed_cidrs": "10.0.0.0/8\n::ffff:192.0.2.1",
            "csrf_token": csrf_token(owner_client, "/keys")}
    response = owner_client.post("/keys/new", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert MESSAGE in html.replace("&#34;", '"')
    owner_client.set_cookie("pforte_lang", "de")
    german = owner_client.post("/keys/new", data={**form, "csrf_token": csrf_token(owner_client, "/keys")})
    assert german.status_code == 422
    text = german.get_data(as_text=True)
    assert "::ffff:192.0.2.1" in text and "192.0.2.1 instead" not in text
    assert "Geben Sie stattdessen 192.0.2.1 ein." in text
