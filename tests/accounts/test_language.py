"""Languages: the browser's choice, the switch in the top bar, remembered per user; the German catalogue."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from support.web import csrf_token, log_in, post_form

CATALOGUE = Path(__file__).resolve().parents[2] / "app" / "translations" / "de" / "LC_MESSAGES"
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def heading(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)


def test_the_browser_language_decides_for_visitors(client, owner):
    def shown(accept: str) -> str:
        return heading(client.get("/login", headers={"Accept-Language": accept}).get_data(as_text=True))

    assert shown(GERMAN["Accept-Language"]) == "Anmelden"
    assert shown("en-GB") == "Log in"
    assert shown("fr-FR") == "Log in"  # neither language: the default, English


def test_messages_from_python_code_are_translated_too(client, owner):
    token = csrf_token(client, "/login")
    response = client.post("/login", headers=GERMAN, data={"csrf_token": token, "username": "owner",
                                                           "password": "wrong-password"})
    assert "Unbekannter Benutzername oder falsches Passwort." in response.get_data(as_text=True)


def test_the_switch_sets_a_cookie_for_visitors(client, owner):
    response = post_form(client, "/language", {"language": "de", "next": "/login"}, page="/login")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("pforte_lang="))
    assert "pforte_lang=de" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    html = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert heading(html) == "Anmelden" and '<html lang="de">' in html


def test_the_switch_never_redirects_off_site(client, owner):
    form = {"language": "de", "next": "https://evil.example/"}
    response = post_form(client, "/language", form, page="/login")
    assert response.headers["Location"] == "/"


def test_the_choice_is_remembered_per_user(app, client_as):
    client = client_as("admin", name="klara")
    post_form(client, "/language", {"language": "de", "next": "/account"})
    fresh = app.test_client()  # another browser, English, no cookie
    log_in(fresh, "klara", "role-password-1")
    html = fresh.get("/account", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert heading(html) == "Ihr Konto"
    assert ">Benutzer<" in html and ">Prüfprotokoll<" in html  # navigation


def test_german_pages_use_german_role_names_and_dates(client_as):
    client = client_as("owner")
    post_form(client, "/account/preferences", {"language": "de", "timezone": "Europe/Berlin"})
    html = client.get("/users").get_data(as_text=True)
    assert "(Inhaber)" in html and "Benutzer anlegen" in html
    assert re.search(r"<td>\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}:\d{2}</td>", html)  # German medium format


def test_every_message_has_a_german_translation_and_the_mo_file_matches():
    with (CATALOGUE / "messages.po").open("rb") as fh:
        po = read_po(fh)
    with (CATALOGUE / "messages.mo").open("rb") as fh:
        mo = read_mo(fh)
    untranslated = [m.id for m in po if m.id and (m.fuzzy or not all(
        m.string if isinstance(m.string, tuple) else (m.string,)))]
    assert untranslated == []
    def key(message_id):
        return tuple(message_id) if isinstance(message_id, list | tuple) else message_id

    compiled = {key(m.id): key(m.string) for m in mo if m.id}
    for message in po:
        if message.id:
            assert compiled.get(key(message.id)) == key(message.string), message.id
