"""Settings: defaults → instance/pforte.toml → PFORTE_* environment; generated secrets kept in a 0600 file."""
from __future__ import annotations

import json
import stat

import pytest

from app.config import ConfigError, build_flask_config, load_or_create_secrets, load_settings


def write_toml(instance, text: str) -> None:
    (instance / "pforte.toml").write_text(text)


def test_defaults_apply_without_file_or_environment(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["KEY_PREFIX"] == "sk-pf-"
    assert settings["RATELIMIT_PER_IP"] == "60/minute"
    assert settings["LOGIN_ATTEMPTS"] == "5/minute"
    assert settings["PORT"] == 8080


def test_the_file_overrides_defaults_and_the_environment_overrides_the_file(tmp_path):
    write_toml(tmp_path, 'key_prefix = "sk-town-"\nport = 9000\nlogin_attempts = "3/minute"\n')
    settings = load_settings(tmp_path, environ={})
    assert settings["KEY_PREFIX"] == "sk-town-"
    assert settings["PORT"] == 9000 and settings["LOGIN_ATTEMPTS"] == "3/minute"
    settings = load_settings(tmp_path, environ={"PFORTE_KEY_PREFIX": "sk-env-", "PFORTE_PORT": "9100"})
    assert (settings["KEY_PREFIX"], settings["PORT"]) == ("sk-env-", 9100)
    assert settings["LOGIN_ATTEMPTS"] == "3/minute"  # from the file, the environment did not set it


def test_environment_reaches_the_flask_config(tmp_path, monkeypatch):
    write_toml(tmp_path, 'ratelimit_per_ip = "30/minute"\n')
    monkeypatch.delenv("PFORTE_DATABASE_URL", raising=False)
    monkeypatch.setenv("PFORTE_LOG_JSON", "yes")
    monkeypatch.setenv("PFORTE_DEFAULT_LANGUAGE", "de")
    config = build_flask_config(tmp_path)
    assert config["PFORTE_RATELIMIT_PER_IP"] == "30/minute"
    assert config["PFORTE_LOG_JSON"] is True
    assert config["BABEL_DEFAULT_LOCALE"] == "de"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'pforte.db'}"
    assert config["SESSION_COOKIE_HTTPONLY"] is True and config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_a_list_of_trusted_proxies_in_the_file_is_accepted(tmp_path):
    write_toml(tmp_path, 'trusted_proxies = ["10.0.0.0/8", "::1"]\n')
    assert load_settings(tmp_path, environ={})["TRUSTED_PROXIES"] == "10.0.0.0/8,::1"


@pytest.mark.parametrize("name, value, words", [
    ("PFORTE_PORT", "eighty", "whole number"),
    ("PFORTE_LOG_JSON", "maybe", "true or false"),
    ("PFORTE_LOGIN_ATTEMPTS", "five a minute", "5/minute"),
    ("PFORTE_RATELIMIT_PER_IP", "", "5/minute"),
    ("PFORTE_TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip", "IP addresses or networks"),
    ("PFORTE_DEFAULT_LANGUAGE", "fr", "'en' or 'de'"),
    ("PFORTE_DATABASE_POOL_SIZE", "0", "at least 1"),
    ("PFORTE_DATABASE_MAX_OVERFLOW", "-1", "0 or more"),
    ("PFORTE_SESSION_IDLE_SECONDS", "0", "at least 1"),
    ("PFORTE_SESSION_LIFETIME_SECONDS", "half a day", "whole number"),
    ("PFORTE_LOGIN_MAX_DELAY_SECONDS", "120", "from 0 to 60"),
    ("PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS", "perhaps", "true or false"),
    ("PFORTE_PUBLIC_URL", "pforte.example", "http or https"),
    ("PFORTE_PUBLIC_URL", "https://pforte.example/?x=1", "no query"),
    ("PFORTE_WRITE_TIMEOUT_SECONDS", "0", "at least 1"),
    ("PFORTE_MAX_CONNECTIONS", "many", "whole number"),
    ("PFORTE_ADMIN_MAX_BODY_BYTES", "-1", "at least 1"),
])
def test_unusable_values_name_the_setting_and_the_problem(tmp_path, name, value, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={name: value})
    assert name in str(caught.value) and words in str(caught.value)


def test_session_login_and_public_url_settings(tmp_path):
    defaults = load_settings(tmp_path, environ={})
    assert (defaults["SESSION_IDLE_SECONDS"], defaults["SESSION_LIFETIME_SECONDS"]) == (1800, 43200)
    assert defaults["LOGIN_MAX_DELAY_SECONDS"] == 5.0 and defaults["ALLOW_LINK_LOCAL_UPSTREAMS"] is False
    assert defaults["PUBLIC_URL"] == ""
    chosen = load_settings(tmp_path, environ={"PFORTE_PUBLIC_URL": " https://pforte.example/base/ ",
                                              "PFORTE_LOGIN_MAX_DELAY_SECONDS": "0.25",
                                              "PFORTE_SESSION_IDLE_SECONDS": "60"})
    assert chosen["PUBLIC_URL"] == "https://pforte.example/base"
    assert chosen["LOGIN_MAX_DELAY_SECONDS"] == 0.25 and chosen["SESSION_IDLE_SECONDS"] == 60
    config = build_flask_config(tmp_path, {"PFORTE_SESSION_LIFETIME_SECONDS": "3600"})
    assert config["WTF_CSRF_TIME_LIMIT"] == 3600  # CSRF tokens last no longer than a session


def test_connection_limits_have_defaults_and_reach_flask(tmp_path):
    """The bounds of app/server.py and the admin pages' body limit (Flask's MAX_CONTENT_LENGTH)."""
    settings = load_settings(tmp_path, environ={})
    assert (settings["HEADER_TIMEOUT_SECONDS"], settings["IDLE_TIMEOUT_SECONDS"], settings["WRITE_TIMEOUT_SECONDS"],
            settings["MAX_CONNECTIONS"]) == (20, 75, 60, 10000)
    config = build_flask_config(tmp_path)
    assert config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024
    write_toml(tmp_path, "admin_max_body_bytes = 4096\nidle_timeout_seconds = 90\n")
    config = build_flask_config(tmp_path)
    assert config["MAX_CONTENT_LENGTH"] == 4096 and config["PFORTE_IDLE_TIMEOUT_SECONDS"] == 90


def test_a_broken_settings_file_is_reported(tmp_path):
    write_toml(tmp_path, "port = = 8080\n")
    with pytest.raises(ConfigError, match="pforte.toml is not valid TOML"):
        load_settings(tmp_path, environ={})


def test_secrets_are_created_once_with_mode_0600_and_kept(tmp_path):
    first = load_or_create_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) >= {"secret_key", "key_pepper", "encryption_key", "setup_token"}
    assert len(set(first.values())) == len(first)  # all different
    assert load_or_create_secrets(tmp_path) == first  # a restart keeps them
    path.chmod(0o644)
    load_or_create_secrets(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # loosened permissions are tightened again


def test_a_missing_secret_is_added_without_touching_the_others(tmp_path):
    first = load_or_create_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    data = json.loads(path.read_text())
    del data["setup_token"]
    path.write_text(json.dumps(data))
    second = load_or_create_secrets(tmp_path)
    assert {k: second[k] for k in data} == data and second["setup_token"] != first["setup_token"]


def test_a_damaged_secrets_file_is_never_replaced(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        load_or_create_secrets(tmp_path)
    assert path.read_text() == "{not json"


def test_two_app_starts_share_the_session_key(tmp_path):
    from app import create_app

    one = create_app({"INSTANCE_PATH": str(tmp_path)})
    two = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert one.config["SECRET_KEY"] == two.config["SECRET_KEY"]
    assert one.config["PFORTE_KEY_PEPPER"] == two.config["PFORTE_KEY_PEPPER"]
    assert one.config["PFORTE_SETUP_TOKEN"] == two.config["PFORTE_SETUP_TOKEN"]


def test_the_command_line_names_a_bad_setting_without_a_traceback(tmp_path):
    from support.processes import run_cli

    result = run_cli(tmp_path, "init", env={"PFORTE_PORT": "eighty"}, check=False)
    assert result.returncode == 1
    assert "pforte: PFORTE_PORT must be a whole number, not 'eighty'." in result.stderr
    assert "Traceback" not in result.stderr


def test_the_postgresql_pool_is_sized_by_its_settings(tmp_path):
    url = {"PFORTE_DATABASE_URL": "postgresql+psycopg://pforte@db/pforte"}
    options = build_flask_config(tmp_path, url)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (10, 20)
    options = build_flask_config(tmp_path, {**url, "PFORTE_DATABASE_POOL_SIZE": "3",
                                            "PFORTE_DATABASE_MAX_OVERFLOW": "0"})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (3, 0)
