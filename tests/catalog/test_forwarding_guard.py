"""At forwarding time, after the host is resolved: a running `pforte serve` does not connect to a
link-local or cloud-metadata address, even when the connection was saved while they were allowed."""
from __future__ import annotations

import json

import openai
import pytest


def test_the_gateway_refuses_to_forward_to_a_metadata_address(live_server):
    refused = live_server.cli("connections", "add", "--name", "meta", "--kind", "openai", "--base-url",
                              "http://[fd00:ec2::254]/v1", check=False)
    assert refused.returncode != 0 and "Link-local and cloud metadata addresses" in refused.stderr
    allowed = {"PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS": "true"}  # for the CLI only, not for the server
    live_server.cli("connections", "add", "--name", "meta", "--kind", "openai", "--base-url",
                    "http://169.254.169.254/v1", "--connect-timeout", "3", env=allowed)
    live_server.cli("models", "add", "--id", "meta-model", "--connection", "meta", env=allowed)
    key = json.loads(live_server.cli("keys", "create", "--name", "k", "--json").stdout)["key"]
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="meta-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    body = info.value.response.json()["error"]
    assert body["code"] == "upstream_unavailable"
    assert "link-local or a cloud metadata service" in body["message"]
    assert "refused to connect to 169.254.169.254" in live_server.log_text()
