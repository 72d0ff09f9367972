"""`pforte connections …` and `pforte models …` through the real command."""
from __future__ import annotations

import json
import sqlite3

import pytest
from support.processes import run_cli

SECRET = "sk-cli-secret-Hq2vLr88"


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "cli-instance"
    path.mkdir()
    env = {"PFORTE_DATABASE_URL": f"sqlite:///{path / 'pforte.db'}"}
    run_cli(path, "init", env=env)

    def pforte(*args, **kwargs):
        return run_cli(path, *args, env={**env, **kwargs.pop("env", {})}, **kwargs)

    pforte.path = path
    return pforte


def test_the_dev_script_sequence_works(instance):
    instance("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    instance("models", "add", "--id", "demo", "--connection", "demo", "--name", "Demo model")
    [model] = json.loads(instance("models", "list", "--json").stdout)
    assert model["id"] == "demo" and model["name"] == "Demo model" and model["enabled"] is True
    assert model["demo"] is True and model["connection"] == "demo" and model["upstream_model"] == "demo"
    assert model["capabilities"] == ["chat", "embeddings", "tools", "vision"]


def test_the_api_key_comes_from_the_environment_and_never_comes_back(instance):
    result = instance("connections", "add", "--name", "openai", "--kind", "openai", "--base-url",
                      "https://api.example.test/v1", "--api-key-env", "UPSTREAM_KEY", "--timeout", "300",
                      env={"UPSTREAM_KEY": SECRET})
    assert "API key set" in result.stdout and SECRET not in result.stdout + result.stderr
    listing = instance("connections", "list", "--json").stdout
    [connection] = json.loads(listing)
    assert connection["credential"] == "set" and connection["total_timeout"] == 300.0
    plain = instance("connections", "list").stdout
    assert SECRET not in listing + plain and "openai" in plain
    with sqlite3.connect(instance.path / "pforte.db") as db:
        dump = "\n".join(db.iterdump())
    assert SECRET not in dump and "connection.create" in dump


def test_a_missing_environment_variable_is_an_error(instance):
    result = instance("connections", "add", "--name", "x", "--kind", "openai", "--base-url", "https://h/v1",
                      "--api-key-env", "NOT_SET_ANYWHERE", check=False)
    assert result.returncode != 0 and "NOT_SET_ANYWHERE is not set" in result.stderr
    assert json.loads(instance("connections", "list", "--json").stdout) == []


def test_bad_input_gets_clear_messages(instance):
    result = instance("connections", "add", "--name", "x", "--kind", "bedrock", "--base-url", "", check=False)
    assert result.returncode == 2 and "bedrock" in result.stderr
    result = instance("connections", "add", "--name", "x", "--kind", "openai", "--base-url", "", check=False)
    assert result.returncode == 1 and "base_url: A base URL is required" in result.stderr
    assert "Traceback" not in result.stderr
    result = instance("models", "add", "--id", "m", "--connection", "nope", check=False)
    assert result.returncode == 1 and "connection: Choose an existing connection" in result.stderr
    instance("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    result = instance("models", "add", "--id", "m", "--connection", "demo", "--capabilities", "chat,audio",
                      check=False)
    assert result.returncode == 1 and "Unknown capability: audio" in result.stderr


def test_models_add_with_all_options_then_disable_and_enable(instance):
    instance("connections", "add", "--name", "vllm", "--kind", "openai", "--base-url", "http://10.0.0.5:8000/v1")
    instance("models", "add", "--id", "meta-llama/Llama-3.1-8B:q4", "--connection", "vllm",
             "--upstream-model", "llama31", "--name", "Llama", "--input-price", "0.2",
             "--output-price", "0.8", "--capabilities", "chat, tools")
    [model] = json.loads(instance("models", "list", "--json").stdout)
    assert model["id"] == "meta-llama/Llama-3.1-8B:q4" and model["upstream_model"] == "llama31"
    assert (model["input_price"], model["output_price"]) == (0.2, 0.8)
    assert model["capabilities"] == ["chat", "tools"] and model["demo"] is False
    assert "disabled" in instance("models", "disable", "meta-llama/Llama-3.1-8B:q4").stdout
    assert json.loads(instance("models", "list", "--json").stdout)[0]["enabled"] is False
    instance("models", "enable", "meta-llama/Llama-3.1-8B:q4")
    assert json.loads(instance("models", "list", "--json").stdout)[0]["enabled"] is True
    result = instance("models", "disable", "unknown", check=False)
    assert result.returncode == 1 and "No model with id 'unknown'" in result.stderr


def test_connections_test_reports_the_demo_and_a_dead_upstream(instance):
    instance("connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "")
    assert "built-in demo" in instance("connections", "test", "demo").stdout
    instance("connections", "add", "--name", "dead", "--kind", "openai", "--base-url", "http://127.0.0.1:9/v1",
             "--connect-timeout", "1")
    result = instance("connections", "test", "dead", check=False)
    assert result.returncode == 1 and "connect" in result.stderr


def test_the_responses_api_flag_is_set_changed_listed_and_audited(instance):
    instance("connections", "add", "--name", "native", "--kind", "openai", "--base-url", "https://h.test/v1",
             "--responses-api")
    instance("connections", "add", "--name", "azure", "--kind", "azure", "--base-url", "https://r.test",
             "--api-version", "2024-10-21", "--timeout", "300")
    listed = {row["name"]: row for row in json.loads(instance("connections", "list", "--json").stdout)}
    assert (listed["native"]["responses_api"], listed["azure"]["responses_api"]) == (True, False)
    assert "responses-api" in instance("connections", "list").stdout
    result = instance("connections", "update", "azure", "--responses-api")
    assert "offers the Responses API" in result.stdout
    instance("connections", "update", "native", "--no-responses-api", "--read-timeout", "30")
    listed = {row["name"]: row for row in json.loads(instance("connections", "list", "--json").stdout)}
    assert (listed["native"]["responses_api"], listed["azure"]["responses_api"]) == (False, True)
    # what is not given stays as it was
    assert listed["azure"]["api_version"] == "2024-10-21" and listed["azure"]["total_timeout"] == 300.0
    assert listed["native"]["read_timeout"] == 30.0 and listed["native"]["base_url"] == "https://h.test/v1"
    with sqlite3.connect(instance.path / "pforte.db") as db:
        rows = db.execute("SELECT target_name, before, after FROM audit_events WHERE action = 'connection.update' "
                          "ORDER BY id").fetchall()
    assert [(name, json.loads(before)["responses_api"], json.loads(after)["responses_api"])
            for name, before, after in rows] == [("azure", False, True), ("native", True, False)]


def test_only_openai_style_and_azure_connections_offer_the_responses_api(instance):
    result = instance("connections", "add", "--name", "claude", "--kind", "anthropic", "--base-url",
                      "https://api.anthropic.test", "--responses-api", check=False)
    assert result.returncode == 1 and "Only OpenAI-compatible and Azure OpenAI" in result.stderr
    instance("connections", "add", "--name", "claude", "--kind", "anthropic", "--base-url",
             "https://api.anthropic.test")
    result = instance("connections", "update", "claude", "--responses-api", check=False)
    assert result.returncode == 1 and "responses_api" in result.stderr
    assert instance("connections", "update", "nobody", check=False).returncode == 1
