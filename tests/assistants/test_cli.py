"""`pforte assistants …`, `pforte conversations purge` and the keys' conversation options, through the real
command against an initialised instance."""
import json

import pytest
from support.processes import run_cli


@pytest.fixture
def pforte(instance_path, database_url):
    env = {"PFORTE_DATABASE_URL": database_url}
    run_cli(instance_path, "init", env=env)
    run_cli(instance_path, "connections", "add", "--name", "demo", "--kind", "demo", "--base-url", "", env=env)
    run_cli(instance_path, "models", "add", "--id", "demo-chat", "--connection", "demo", env=env)

    def run(*args, check=True):
        return run_cli(instance_path, *args, env=env, check=check)

    return run


def test_assistant_lifecycle_with_json(pforte):
    added = json.loads(pforte("assistants", "add", "--id", "helpdesk", "--model", "demo-chat", "--instructions",
                              "Answer briefly.", "--name", "Help desk", "--temperature", "0.2",
                              "--max-output-tokens", "300", "--json").stdout)
    assert added == {**added, "id": "helpdesk", "name": "Help desk", "model": "demo-chat",
                     "instructions": "Answer briefly.", "temperature": 0.2, "max_output_tokens": 300,
                     "tools": [], "enabled": True}
    updated = json.loads(pforte("assistants", "update", "helpdesk", "--temperature", "none",
                                "--tools", '[{"type": "function", "name": "lookup"}]', "--json").stdout)
    assert updated["temperature"] is None and updated["tools"] == [{"type": "function", "name": "lookup"}]
    assert updated["instructions"] == "Answer briefly."  # not given, unchanged
    assert pforte("assistants", "disable", "helpdesk").stdout.startswith("Disabled assistant 'helpdesk'")
    listed = json.loads(pforte("assistants", "list", "--json").stdout)
    assert [(a["id"], a["enabled"]) for a in listed] == [("helpdesk", False)]
    assert json.loads(pforte("assistants", "enable", "helpdesk", "--json").stdout)["enabled"] is True


def test_assistant_errors_are_clear(pforte):
    missing = pforte("assistants", "add", "--id", "x", "--model", "no-such-model", "--instructions", "Hi",
                     check=False)
    assert missing.returncode == 1 and "No model with the id “no-such-model”" in missing.stderr
    clash = pforte("assistants", "add", "--id", "demo-chat", "--model", "demo-chat", "--instructions", "Hi",
                   check=False)
    assert clash.returncode == 1 and "A model in the catalog has this id" in clash.stderr
    hot = pforte("assistants", "add", "--id", "hot", "--model", "demo-chat", "--instructions", "Hi",
                 "--temperature", "3", check=False)
    assert hot.returncode == 1 and "from 0 to 2" in hot.stderr
    assert pforte("assistants", "update", "nobody", "--name", "N", check=False).returncode == 1
    bare = pforte("assistants", "add", "--id", "y", "--model", "demo-chat", check=False)
    assert bare.returncode == 1 and "Enter the instructions" in bare.stderr


def test_keys_with_conversations_and_an_assistant(pforte):
    pforte("assistants", "add", "--id", "helpdesk", "--model", "demo-chat", "--instructions", "Hi")
    created = json.loads(pforte("keys", "create", "--name", "Desk", "--keep-conversations", "--assistant",
                                "helpdesk", "--json").stdout)
    plain = json.loads(pforte("keys", "create", "--name", "Plain", "--json").stdout)
    listed = {row["id"]: row for row in json.loads(pforte("keys", "list", "--json").stdout)}
    assert listed[created["id"]]["keep_conversations"] is True and listed[created["id"]]["conversations_kept"]
    assert listed[created["id"]]["assistant_id"] == "helpdesk"
    assert listed[plain["id"]]["keep_conversations"] is None and not listed[plain["id"]]["conversations_kept"]
    off = json.loads(pforte("keys", "update", created["id"], "--no-keep-conversations", "--json").stdout)
    assert off["keep_conversations"] is False
    bad = pforte("keys", "create", "--name", "Bad", "--assistant", "nobody", check=False)
    assert bad.returncode == 1 and "No assistant has the id “nobody”" in bad.stderr


@pytest.fixture
def store(instance_path, database_url):
    """store(key_public_id, count) keeps `count` threads for the key, in a separate app on the instance."""
    from app import create_app
    from app.extensions import db

    app = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url})

    def keep(key_public_id: str, count: int) -> None:
        from app.conversations import service
        from app.keys import service as keys

        with app.app_context():
            key_id = keys.get_key(key_public_id).id
            for n in range(count):
                service.start_thread(key_id, [{"role": "user", "content": f"turn {n}"}])

    yield keep
    with app.app_context():
        db.engine.dispose()


def test_conversations_purge(pforte, store):
    first = json.loads(pforte("keys", "create", "--name", "K", "--json").stdout)
    second = json.loads(pforte("keys", "create", "--name", "L", "--json").stdout)
    store(first["id"], 2)
    store(second["id"], 1)
    assert json.loads(pforte("conversations", "purge", "--json").stdout) == {"deleted": 0}  # none expired
    assert pforte("conversations", "purge", "--key", first["id"]).stdout == "Deleted 2 conversations of key 'K'.\n"
    assert json.loads(pforte("conversations", "purge", "--all", "--json").stdout) == {"deleted": 1}
    assert pforte("conversations", "purge", "--key", "key_nope", check=False).returncode == 1
