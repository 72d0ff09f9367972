"""`pforte keys …` through the real command (DESIGN §8), against an initialised instance."""
import json

import pytest
from support.processes import run_cli


@pytest.fixture
def pforte(instance_path, database_url):
    """pforte(*args, check=True) → CompletedProcess of the real command on a fresh, initialised instance."""
    env = {"PFORTE_DATABASE_URL": database_url}
    run_cli(instance_path, "init", env=env)

    def run(*args, check=True, **kwargs):
        return run_cli(instance_path, *args, env=env, check=check, **kwargs)

    return run


@pytest.fixture
def verify(instance_path, database_url):
    """verify(raw) → what the gateway's verify_key says, in a separate app on the same instance."""
    from app import create_app

    app = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url})

    def check(raw):
        from app.keys.verify import verify_key

        with app.app_context():
            return verify_key(raw)

    yield check
    with app.app_context():
        from app.extensions import db

        db.engine.dispose()


def _listed(pforte) -> dict:
    return {row["id"]: row for row in json.loads(pforte("keys", "list", "--json").stdout)}


def test_create_json_prints_id_key_prefix_name_and_the_key_works(pforte, verify):
    created = json.loads(pforte("keys", "create", "--name", "DMS", "--json").stdout)
    assert set(created) == {"id", "key", "prefix", "name"}
    assert created["name"] == "DMS" and created["key"].startswith(created["prefix"])
    assert created["key"].startswith("sk-pf-") and created["id"].startswith("key_")
    context = verify(created["key"])
    assert context.public_id == created["id"] and context.quota_micro is None  # unlimited without --quota
    listed = _listed(pforte)[created["id"]]
    assert listed["status"] == "active" and listed["prefix"] == created["prefix"]
    assert created["key"] not in json.dumps(listed)


def test_create_prints_the_key_once_with_a_warning(pforte):
    result = pforte("keys", "create", "--name", "Portal")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Created key 'Portal' (id key_") and lines[1].startswith("sk-pf-")
    assert "will not be shown again" in result.stderr
    listing = pforte("keys", "list").stdout
    assert "Portal" in listing and lines[1] not in listing and lines[1][:14] in listing


def test_create_with_every_policy_option(pforte, verify):
    created = json.loads(pforte(
        "keys", "create", "--name", "Translation", "--expires", "2031-03-04", "--scope", "llm",
        "--models", "gpt-4o, demo", "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32",
        "--quota", "12.345678", "--quota-monthly", "--rpm", "60", "--rph", "1000",
        "--monthly-requests", "50000", "--max-concurrent", "3", "--json").stdout)
    row = _listed(pforte)[created["id"]]
    assert row["expires_at"] == "2031-03-04T00:00:00Z" and row["scope"] == "llm"
    assert row["allowed_models"] == ["gpt-4o", "demo"]
    assert row["allowed_cidrs"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert (row["quota_micro"], row["quota_monthly"]) == (12_345_678, True)
    assert (row["rpm"], row["rph"], row["monthly_requests"], row["max_concurrent"]) == (60, 1000, 50000, 3)
    context = verify(created["key"])
    assert context.allowed_cidrs == ("10.0.0.0/8", "2001:db8::/32") and context.rpm == 60


def test_quota_zero_means_no_credits(pforte):
    created = json.loads(pforte("keys", "create", "--name", "empty", "--quota", "0", "--json").stdout)
    assert _listed(pforte)[created["id"]]["quota_micro"] == 0


INVALID = [
    (["--allow-ip", "10.0.0.0/33"], 1, "“10.0.0.0/33” is not an IP address or CIDR range"),
    (["--allow-ip", "fe80::zz"], 1, "is not an IP address or CIDR range"),
    (["--quota", "-1"], 2, "number of credits"),
    (["--quota", "0.0000001"], 2, "six decimal places"),
    (["--rpm", "0"], 1, "at least 1"),
    (["--rpm", "ten"], 2, "whole number"),
    (["--scope", "admin"], 2, "'admin' is not one of"),
    (["--expires", "2001-01-01"], 1, "must lie in the future"),
    (["--expires", "31.12.2031"], 2, "YYYY-MM-DD"),
    (["--name", "n" * 101], 1, "at most 100"),
]


def test_invalid_options_fail_with_a_clear_message(pforte):
    """Bad values of options: status 2 with click's usage message; values the service refuses: status 1."""
    for args, status, message in INVALID:
        result = pforte("keys", "create", "--name", "x", *args, check=False)
        assert result.returncode == status, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert pforte("keys", "create", check=False).returncode == 2  # --name is required
    assert json.loads(pforte("keys", "list", "--json").stdout) == []


def test_update_sets_and_clears_each_setting(pforte):
    key_id = json.loads(pforte("keys", "create", "--name", "k", "--expires", "2031-01-01", "--models", "a",
                               "--allow-ip", "192.0.2.1", "--quota", "5", "--rpm", "1", "--rph", "2",
                               "--monthly-requests", "3", "--max-concurrent", "4", "--json").stdout)["id"]
    updated = json.loads(pforte("keys", "update", key_id, "--name", "renamed", "--scope", "read",
                                "--quota", "7.5", "--quota-monthly", "--rpm", "10", "--json").stdout)
    changed = [updated[f] for f in ("name", "scope", "quota_micro", "quota_monthly", "rpm")]
    assert changed == ["renamed", "read", 7_500_000, True, 10]
    assert updated["rph"] == 2 and updated["allowed_models"] == ["a"]  # untouched
    pforte("keys", "update", key_id, "--expires", "never", "--models", "all", "--allow-ip", "any",
           "--quota", "unlimited", "--no-quota-monthly", "--rpm", "none", "--rph", "none",
           "--monthly-requests", "none", "--max-concurrent", "none")
    row = _listed(pforte)[key_id]
    assert (row["expires_at"], row["allowed_models"], row["allowed_cidrs"], row["quota_micro"]) == (
        None, [], [], None)
    assert (row["quota_monthly"], row["rpm"], row["rph"], row["monthly_requests"], row["max_concurrent"]) == (
        False, None, None, None, None)


def test_update_needs_an_option_and_a_known_id(pforte):
    key_id = json.loads(pforte("keys", "create", "--name", "k", "--json").stdout)["id"]
    nothing = pforte("keys", "update", key_id, check=False)
    assert nothing.returncode == 2 and "Nothing to change" in nothing.stderr
    unknown = pforte("keys", "update", "key_unknown", "--rpm", "5", check=False)
    assert unknown.returncode == 1 and "No key with id key_unknown" in unknown.stderr


def test_disable_enable_revoke(pforte, verify):
    created = json.loads(pforte("keys", "create", "--name", "k", "--json").stdout)
    key_id, raw = created["id"], created["key"]
    assert "Disabled key 'k'" in pforte("keys", "disable", key_id).stdout
    assert verify(raw).reason == "disabled"
    assert pforte("keys", "list", "--status", "disabled").stdout.count(key_id) == 1
    pforte("keys", "enable", key_id)
    assert verify(raw).public_id == key_id
    pforte("keys", "revoke", key_id)
    assert verify(raw).reason == "revoked" and _listed(pforte)[key_id]["status"] == "revoked"
    again = pforte("keys", "enable", key_id, check=False)
    assert again.returncode == 1 and "cannot be undone" in again.stderr
    missing = pforte("keys", "revoke", "key_missing", check=False)
    assert missing.returncode == 1 and "No key with id key_missing" in missing.stderr


def test_changes_are_audited_as_cli(pforte, instance_path, database_url):
    key_id = json.loads(pforte("keys", "create", "--name", "k", "--json").stdout)["id"]
    pforte("keys", "update", key_id, "--rpm", "5")
    pforte("keys", "revoke", key_id)
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, actor_name, target_id FROM audit_events ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows if r[0].startswith("key.")] == [
        ("key.create", "cli", key_id), ("key.update", "cli", key_id), ("key.revoke", "cli", key_id)]
