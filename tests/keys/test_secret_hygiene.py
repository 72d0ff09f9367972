"""After keys are created in the browser forms and on the command line, the plaintext keys appear nowhere
on disk: not in the SQLite database, its WAL or shared-memory files, nor in the server's log."""
import json
import re

import requests
from support.web import CSRF_FIELD

OWNER = ("owner", "owner-password-1")


def _session(server) -> requests.Session:
    server.cli("users", "create", "--username", OWNER[0], "--role", "owner", "--password-stdin",
               input=OWNER[1] + "\n")
    session = requests.Session()
    token = CSRF_FIELD.search(session.get(f"{server.url}/login", timeout=10).text).group(1)
    response = session.post(f"{server.url}/login", timeout=10, allow_redirects=False,
                            data={"csrf_token": token, "username": OWNER[0], "password": OWNER[1]})
    assert response.status_code == 302
    return session


def _create_in_form(server, session, name: str, htmx: bool) -> str:
    token = CSRF_FIELD.search(session.get(f"{server.url}/keys/new", timeout=10).text).group(1)
    headers = {"HX-Request": "true"} if htmx else {}
    response = session.post(f"{server.url}/keys/new", data={"csrf_token": token, "name": name},
                            headers=headers, timeout=10)
    assert response.status_code == 200
    return re.search(r'id="new-key" value="([^"]+)"', response.text).group(1)


def _files_holding(folder, secrets_: list[str]) -> list[str]:
    """Every file below folder whose bytes contain the random part of any key."""
    needles = [raw[-38:].encode() for raw in secrets_]
    return [str(path) for path in folder.rglob("*") if path.is_file()
            and any(needle in path.read_bytes() for needle in needles)]


def test_plaintext_keys_are_not_stored_or_logged(live_server):
    session = _session(live_server)
    created = [_create_in_form(live_server, session, "form key", htmx=False),
               _create_in_form(live_server, session, "dialog key", htmx=True)]
    created.append(json.loads(live_server.cli("keys", "create", "--name", "cli key", "--json").stdout)["key"])
    created.append(live_server.cli("keys", "create", "--name", "cli text key").stdout.splitlines()[1])
    # Use every key once (and a mistyped one) so that whatever logs requests has had its chance.
    for raw in created + [created[0][:-1] + "0"]:
        requests.get(f"{live_server.url}/v1/models", headers={"Authorization": f"Bearer {raw}"}, timeout=10)
    assert "keys" in session.get(f"{live_server.url}/keys", timeout=10).text

    files = [p.name for p in live_server.instance.rglob("*") if p.is_file()]
    assert "server.log" in files
    if live_server.env.get("PFORTE_DATABASE_URL", "").startswith("sqlite"):
        assert "pforte.db" in files and "pforte.db-wal" in files  # WAL mode: recent writes are here
    assert _files_holding(live_server.instance, created) == []
    live_server.stop()
    assert live_server.log_text().count("path=/v1/models") == len(created) + 1  # the log did see them
    assert _files_holding(live_server.instance, created) == []
