"""The real `pforte` command: `users create` refuses bad input with a non-zero exit and a one-line message
(never a traceback), and `db upgrade` prepares a fresh instance folder and may be run again."""
from __future__ import annotations

import pytest
from support.database import fresh_database_url
from support.opskit import query
from support.processes import run_cli


@pytest.fixture
def instance(tmp_path):
    """A fresh instance folder (and its own database) with the schema in place: (folder, env)."""
    folder = tmp_path / "instance"
    folder.mkdir()
    with fresh_database_url(folder) as url:
        env = {"PFORTE_DATABASE_URL": url}
        run_cli(folder, "db", "upgrade", env=env)
        yield folder, env


def create_user(instance, username: str, password: str, *options: str):
    folder, env = instance
    return run_cli(folder, "users", "create", "--username", username, *options, "--password-stdin",
                   input=password + "\n", env=env, check=False)


def assert_refused(result, words: str) -> None:
    """Non-zero exit, no traceback, and the reason on exactly one `Error:` line."""
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert words in errors[0], errors[0]


def usernames(instance) -> list[str]:
    _, env = instance
    return [row["username"] for row in query(env["PFORTE_DATABASE_URL"], "SELECT username FROM users")]


def test_users_create_works_and_refuses_bad_input_in_one_line(instance):
    created = create_user(instance, "fachamt", "a-long-enough-password", "--role", "admin")
    assert created.returncode == 0, created.stderr
    assert "Created admin 'fachamt'" in created.stdout

    assert_refused(create_user(instance, "chef", "a-long-enough-password", "--role", "boss"), "'boss'")
    assert_refused(create_user(instance, "kurz", "short", "--role", "admin"), "at least 10 characters")
    assert_refused(create_user(instance, "fachamt", "another-long-password", "--role", "auditor"),
                   "exists already")
    assert usernames(instance) == ["fachamt"], "nothing was created by the refused commands"


def test_db_upgrade_on_a_fresh_instance_is_idempotent(tmp_path):
    folder = tmp_path / "brand-new"  # does not exist yet
    with fresh_database_url(tmp_path) as url:
        env = {"PFORTE_DATABASE_URL": url}
        run_cli(folder, "db", "upgrade", env=env)
        assert (folder / "secrets.json").exists(), "the instance folder was created with its secrets"
        head = run_cli(folder, "db", "current", env=env).stdout
        assert "(head)" in head

        again = run_cli(folder, "db", "upgrade", env=env)
        assert "Traceback" not in again.stdout + again.stderr
        assert "Running upgrade" not in again.stdout + again.stderr, "nothing left to apply"
        assert run_cli(folder, "db", "current", env=env).stdout == head
        done = run_cli(folder, "users", "create", "--username", "owner1", "--role", "owner", "--password-stdin",
                       input="a-long-enough-password\n", env=env)
        assert "Created owner 'owner1'" in done.stdout
