"""The base URL in the docs, the examples and the OpenAPI servers comes from PFORTE_PUBLIC_URL, never from
the Host header a client sends (against running `pforte serve` processes)."""
from __future__ import annotations

import requests

EVIL = {"Host": "evil.example"}


def _shown(server) -> tuple[str, str, str]:
    server.setup_cli("users", "create", "--username", "owner", "--role", "owner", "--password-stdin",
                     input="owner-password-1\n")  # past the first-run setup gate
    servers = requests.get(f"{server.url}/v1/openapi.json", headers=EVIL, timeout=10).json()["servers"]
    use = requests.get(f"{server.url}/use", headers=EVIL, timeout=10).text
    docs = requests.get(f"{server.url}/docs", headers=EVIL, timeout=10).text
    return servers[0]["url"], use, docs


def test_the_public_url_setting_is_the_base_url_everywhere(live_server_factory):
    server = live_server_factory(env={"PFORTE_PUBLIC_URL": "https://sprachmodelle.example.org/"})
    url, use, docs = _shown(server)
    assert url == "https://sprachmodelle.example.org/v1"
    assert 'value="https://sprachmodelle.example.org/v1"' in use
    assert 'base_url="https://sprachmodelle.example.org/v1"' in docs
    assert "evil.example" not in use + docs


def test_without_the_setting_the_listening_address_is_shown(live_server):
    url, use, docs = _shown(live_server)
    assert url == f"{live_server.url}/v1"
    assert f'value="{live_server.url}/v1"' in use and f'base_url="{live_server.url}/v1"' in docs
    assert "evil.example" not in use + docs


def test_a_bad_public_url_stops_the_server_with_a_clear_message(live_server):
    result = live_server.cli("setting", "public_url", env={"PFORTE_PUBLIC_URL": "ftp://x?y"}, check=False)
    assert result.returncode != 0
    assert "PFORTE_PUBLIC_URL must be the address clients use" in result.stdout + result.stderr
