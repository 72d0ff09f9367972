"""Helpers for the operations tests: a priced model behind the fake upstream,
keys made with the real `pforte keys create`, and a look at what a server wrote to its database."""
from __future__ import annotations

import json
import re

import requests
import sqlalchemy as sa

from support.waiting import wait_until
from support.web import CSRF_FIELD

MODEL = "fake"
OWNER = ("operator", "operator-password-1")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def add_fake_model(server, upstream, model: str = MODEL) -> None:
    """A connection to the fake upstream and a priced model on it, visible to the running server."""
    server.setup_cli("connections", "add", "--name", "fake-up", "--kind", "openai",
                     "--base-url", f"{upstream.url}/v1")
    server.setup_cli("models", "add", "--id", model, "--connection", "fake-up", "--upstream-model", "gpt-fake",
                     "--input-price", "1000", "--output-price", "2000")


def create_key(server, name: str, *options: str) -> dict:
    """`pforte keys create --json` → {"id", "key", "prefix", "name"}."""
    result = server.setup_cli("keys", "create", "--name", name, *options, "--json")
    return json.loads(result.stdout)


def wait_for_model(server, key: str, model: str = MODEL, timeout: float = 10.0) -> None:
    """Poll /v1/models until the server's catalog shows the model (other processes' changes take ≤ 1 s)."""

    def listed() -> bool:
        answer = requests.get(f"{server.url}/v1/models", headers=auth(key), timeout=5)
        return answer.status_code == 200 and any(m["id"] == model for m in answer.json()["data"])

    wait_until(listed, timeout, f"model {model} to appear on {server.url}", interval=0.1)


def database_url(server) -> str:
    return server.env.get("PFORTE_DATABASE_URL") or f"sqlite:///{server.instance / 'pforte.db'}"


def query(server_or_url, sql: str, **params) -> list[dict]:
    url = server_or_url if isinstance(server_or_url, str) else database_url(server_or_url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def post_chat(server, key: str, content: str, session=None) -> requests.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    return (session or requests).post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body,
                                      timeout=30)


def stream_chat(server, key: str, content: str, model: str = MODEL, **kwargs) -> requests.Response:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}]}
    return requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, stream=True,
                         timeout=kwargs.pop("timeout", 60), **kwargs)


def admin_session(server, username: str = OWNER[0], password: str = OWNER[1]) -> requests.Session:
    """A browser-like session logged in to one server's admin pages."""
    session = requests.Session()
    token = CSRF_FIELD.search(session.get(f"{server.url}/login", timeout=10).text).group(1)
    form = {"csrf_token": token, "username": username, "password": password}
    answer = session.post(f"{server.url}/login", data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    return session


def submit_form(session: requests.Session, page_url: str, post_url: str | None = None) -> requests.Response:
    """Open a page and post its form back with the page's CSRF token, as the browser does."""
    token = CSRF_FIELD.search(session.get(page_url, timeout=10).text).group(1)
    return session.post(post_url or page_url, data={"csrf_token": token}, allow_redirects=False, timeout=10)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_exposition(body: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format → {(name, labels): value}; fails on any line that is not valid."""
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples
