"""Settings: defaults, then instance/pforte.toml, then PFORTE_* environment variables.

Generated secrets (session key, key pepper, encryption keys) live in a 0600 file in the
instance folder and are created on first start.
"""
from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from app.client_ip import NetworkEntryError, parse_networks

SECRETS_FILE = "secrets.json"
SETTINGS_FILE = "pforte.toml"

DEFAULTS: dict[str, object] = {
    "DATABASE_URL": None,  # None → SQLite in the instance folder
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_PER_IP": "60/minute",
    "TRUSTED_PROXIES": "",
    "KEY_PREFIX": "sk-pf-",
    "HOST": "127.0.0.1",
    "PORT": 8080,
    "DEFAULT_LANGUAGE": "en",
    "LOGIN_ATTEMPTS": "5/minute",  # failed logins per address, and per user name from one address
    "LOGIN_MAX_DELAY_SECONDS": 5.0,  # the longest slow-down of logins for a user name under attack
    "SESSION_IDLE_SECONDS": 30 * 60,  # an admin session ends after this long without a request
    "SESSION_LIFETIME_SECONDS": 12 * 3600,  # and this long after its login, whatever happened since
    "PUBLIC_URL": "",  # e.g. https://pforte.example; the base URL shown in docs and examples
    "ALLOW_LINK_LOCAL_UPSTREAMS": False,  # upstreams on 169.254.0.0/16, fe80::/10, fd00:ec2::254
    "MAX_BODY_BYTES": 20 * 1024 * 1024,
    "LOG_JSON": False,
    "SHUTDOWN_GRACE_SECONDS": 30,
    "HEADER_TIMEOUT_SECONDS": 20,  # a request's line and headers must arrive within this
    "IDLE_TIMEOUT_SECONDS": 75,  # a kept-alive connection without a next request is closed after this
    "WRITE_TIMEOUT_SECONDS": 60,  # each read of a body and write of an answer (a client that stops reading)
    "MAX_CONNECTIONS": 10000,  # open client connections; one more is answered 503
    "ADMIN_MAX_BODY_BYTES": 2 * 1024 * 1024,  # request bodies of the admin pages (forms); more is a 413
    "METRICS_TOKEN": "",
    "METRICS_ALLOW": "127.0.0.1/32,::1/128",
    "STREAM_PING_SECONDS": 15,
    "UPSTREAM_POOL_SIZE": 256,
    "DATABASE_POOL_SIZE": 10,  # PostgreSQL connections a process keeps open
    "DATABASE_MAX_OVERFLOW": 20,  # and may open on top under load (closed again when returned)
    "UPSTREAM_CA_BUNDLE": "",  # extra CAs for upstream TLS; else REQUESTS_CA_BUNDLE / SSL_CERT_FILE
    "UPSTREAM_MAX_BODY_BYTES": 64 * 1024 * 1024,  # an upstream's JSON answer; more is a 502
    "UPSTREAM_MAX_EVENT_BYTES": 4 * 1024 * 1024,  # one event of an upstream's stream
    "UPSTREAM_MAX_INFLATED_BYTES": 64 * 1024 * 1024,  # a compressed upstream answer, inflated
    "CONVERSATION_RETENTION_DAYS": 30,  # kept conversations are deleted this long after their last turn
    "KEEP_CONVERSATIONS_DEFAULT": False,  # for keys without their own choice, until the owner sets one
    "CONVERSATION_MAX_BYTES": 1024 * 1024,  # one conversation's stored turns and responses (JSON size)
    "CONVERSATIONS_PER_KEY": 1000,  # so one key stores at most this many times CONVERSATION_MAX_BYTES
}

# The bounds of app/server.py's connections and the admin pages' body limit.
_CONNECTION_BOUNDS = {"HEADER_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS", "WRITE_TIMEOUT_SECONDS", "MAX_CONNECTIONS",
                      "ADMIN_MAX_BODY_BYTES"}
_UPSTREAM_CAPS = {"UPSTREAM_MAX_BODY_BYTES", "UPSTREAM_MAX_EVENT_BYTES", "UPSTREAM_MAX_INFLATED_BYTES"}
# Keys that are parsed as integers / booleans when they come from the environment.
_INT_KEYS = {"PORT", "MAX_BODY_BYTES", "SHUTDOWN_GRACE_SECONDS", "STREAM_PING_SECONDS", "UPSTREAM_POOL_SIZE",
             "DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW",
             "CONVERSATION_RETENTION_DAYS", "CONVERSATION_MAX_BYTES", "CONVERSATIONS_PER_KEY",
             "SESSION_IDLE_SECONDS", "SESSION_LIFETIME_SECONDS", *_UPSTREAM_CAPS, *_CONNECTION_BOUNDS}
_FLOAT_KEYS = {"LOGIN_MAX_DELAY_SECONDS"}
_BOOL_KEYS = {"LOG_JSON", "KEEP_CONVERSATIONS_DEFAULT", "ALLOW_LINK_LOCAL_UPSTREAMS"}
# Integers that must be at least 1.
_POSITIVE_KEYS = {"CONVERSATION_RETENTION_DAYS", "CONVERSATION_MAX_BYTES", "CONVERSATIONS_PER_KEY",
                  "SESSION_IDLE_SECONDS", "SESSION_LIFETIME_SECONDS", *_UPSTREAM_CAPS, *_CONNECTION_BOUNDS,
                  "DATABASE_POOL_SIZE"}
# Integers that must not be negative (SQLAlchemy reads a negative overflow as "no limit").
_NATURAL_KEYS = {"DATABASE_MAX_OVERFLOW"}


def default_instance_path() -> Path:
    env = os.environ.get("PFORTE_INSTANCE_PATH")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parent.parent / "instance").resolve()


class ConfigError(ValueError):
    """A setting has a value Pforte cannot use; the message names the setting and the problem."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Settings in Flask-Limiter notation, e.g. "5/minute" or "5/minute;20/hour".
_RATE_KEYS = {"RATELIMIT_PER_IP", "LOGIN_ATTEMPTS"}
# Comma-separated lists, which pforte.toml may also write as arrays.
_LIST_KEYS = {"TRUSTED_PROXIES", "METRICS_ALLOW"}


def valid_rate_limit(spec: str) -> bool:
    """True for a limit in Flask-Limiter notation ('60/minute', '10/second;500/hour')."""
    try:
        return bool(parse_many(spec))
    except ValueError:
        return False


def _coerce(key: str, value: object) -> object:
    """Turn text from the environment into the type the setting needs; raise ConfigError if impossible."""
    if key in _INT_KEYS and not isinstance(value, bool):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"PFORTE_{key} must be a whole number, not {value!r}.") from None
        if key in _POSITIVE_KEYS and number < 1:
            raise ConfigError(f"PFORTE_{key} must be a whole number of at least 1, not {value!r}.")
        if key in _NATURAL_KEYS and number < 0:
            raise ConfigError(f"PFORTE_{key} must be a whole number of 0 or more, not {value!r}.")
        return number
    if key in _FLOAT_KEYS and not isinstance(value, bool):
        try:
            number = float(str(value).strip())
        except ValueError:
            number = -1.0
        if not 0 <= number <= 60:
            raise ConfigError(f"PFORTE_{key} must be a number of seconds from 0 to 60, not {value!r}.")
        return number
    if key in _BOOL_KEYS and isinstance(value, str):
        word = value.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(f"PFORTE_{key} must be true or false, not {value!r}.")
        return word in _TRUE
    if key in _RATE_KEYS and not valid_rate_limit(str(value)):
        raise ConfigError(f"PFORTE_{key} must look like '5/minute' (Flask-Limiter notation), not {value!r}.")
    if key in _LIST_KEYS and isinstance(value, list | tuple):  # TOML may give a list
        value = ",".join(str(item) for item in value)
    if key == "TRUSTED_PROXIES":
        try:
            parse_networks(str(value or ""))
        except NetworkEntryError as exc:
            instead = f" ({exc.entry!r} never matches: enter {exc.suggestion!r})" if exc.suggestion else ""
            raise ConfigError(f"PFORTE_TRUSTED_PROXIES must be a comma-separated list of IP addresses or "
                              f"networks (e.g. 10.0.0.0/8, ::1), not {value!r}{instead}.") from None
    if key == "PUBLIC_URL":
        return _public_url(str(value or ""))
    if key == "DEFAULT_LANGUAGE" and value not in ("en", "de"):
        raise ConfigError(f"PFORTE_DEFAULT_LANGUAGE must be 'en' or 'de', not {value!r}.")
    return value


def _public_url(value: str) -> str:
    """PFORTE_PUBLIC_URL without a trailing slash: http(s), a host, nothing after the path."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ConfigError(f"PFORTE_PUBLIC_URL must be the address clients use, like https://pforte.example "
                          f"(http or https, no query), not {value!r}.")
    return value


def load_settings(instance_path: Path, environ: dict[str, str] | None = None) -> dict[str, object]:
    """Merge defaults, the TOML file and PFORTE_* variables (later wins)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    toml_path = instance_path / SETTINGS_FILE
    if toml_path.exists():
        try:
            with toml_path.open("rb") as fh:
                from_file = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path} is not valid TOML: {exc}") from None
        for key, value in from_file.items():
            settings[key.upper()] = value
    for name, value in environ.items():
        if name.startswith("PFORTE_") and name != "PFORTE_INSTANCE_PATH":
            settings[name[len("PFORTE_"):]] = value
    return {key: _coerce(key, value) for key, value in settings.items()}


_SECRET_MAKERS = {
    "secret_key": lambda: secrets.token_urlsafe(48),
    "key_pepper": lambda: secrets.token_urlsafe(48),
    "encryption_key": lambda: _new_fernet_key(),
    "setup_token": lambda: secrets.token_urlsafe(24),
    "conversation_key": lambda: _new_fernet_key(),
}


def _read_secrets(path: Path) -> dict[str, str] | None:
    """The secrets in the file, or None when there is no file yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        # Never silently replace it: the encryption key inside protects stored upstream credentials.
        raise ConfigError(f"{path} is damaged (not JSON). Restore it from a backup.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is damaged (not a JSON object). Restore it from a backup.")
    return data


def _write_new(path: Path, data: dict[str, str]) -> None:
    """Write data to a temporary file of its own (O_EXCL, mode 0600), complete and synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def _create_secrets(path: Path, data: dict[str, str]) -> bool:
    """Create the file with data unless it exists already (False then): the content is written to a
    temporary file and linked into place, which fails if another start created the file first, so
    no start ever reads a half-written file or keeps secrets that another start overwrote."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_new(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def load_or_create_secrets(instance_path: Path) -> dict[str, str]:
    """Read the instance secrets, creating any that are missing (file mode 0600). Two first starts at
    once end with the same secrets: only one creates the file, the other reads it."""
    path = instance_path / SECRETS_FILE
    instance_path.mkdir(parents=True, exist_ok=True)
    data = _read_secrets(path)
    if data is None:
        fresh = {name: make() for name, make in _SECRET_MAKERS.items()}
        if _create_secrets(path, fresh):
            return fresh
        data = _read_secrets(path) or {}
    missing = [name for name in _SECRET_MAKERS if not data.get(name)]
    if missing:  # an older instance: add the new secrets, keep the others
        data.update({name: _SECRET_MAKERS[name]() for name in missing})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        _write_new(tmp, data)
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return data


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def build_flask_config(instance_path: Path, overrides: dict | None = None) -> dict[str, object]:
    """Everything create_app() puts into app.config."""
    settings = load_settings(instance_path)
    if overrides:
        settings.update({k.removeprefix("PFORTE_"): _coerce(k.removeprefix("PFORTE_"), v)
                         for k, v in overrides.items()})
    found = load_or_create_secrets(instance_path)
    db_url = settings.get("DATABASE_URL") or f"sqlite:///{instance_path / 'pforte.db'}"
    config: dict[str, object] = {f"PFORTE_{k}": v for k, v in settings.items()}
    config.update(
        SECRET_KEY=found["secret_key"],
        PFORTE_KEY_PEPPER=found["key_pepper"].encode(),
        PFORTE_ENCRYPTION_KEY=found["encryption_key"],
        PFORTE_SETUP_TOKEN=found["setup_token"],
        PFORTE_CONVERSATION_KEY=found["conversation_key"],
        SQLALCHEMY_DATABASE_URI=db_url,
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        RATELIMIT_STORAGE_URI=settings["RATELIMIT_STORAGE_URI"],
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_STRATEGY="fixed-window",
        # Flask's limit, for the admin pages (the client API reads its bodies below Flask and enforces
        # PFORTE_MAX_BODY_BYTES with a JSON 413).
        MAX_CONTENT_LENGTH=settings["ADMIN_MAX_BODY_BYTES"],
        WTF_CSRF_TIME_LIMIT=settings["SESSION_LIFETIME_SECONDS"],  # a CSRF token ends with its session
        BABEL_DEFAULT_LOCALE=settings["DEFAULT_LANGUAGE"],
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).resolve().parent / "translations"),
    )
    if db_url.startswith("sqlite"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15, "check_same_thread": False}}
    else:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": settings["DATABASE_POOL_SIZE"],
                                               "max_overflow": settings["DATABASE_MAX_OVERFLOW"]}
    # A failed statement's error names its SQL, never its values (a key's hash, a password hash).
    config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] = True
    if overrides:
        config.update({k: v for k, v in overrides.items() if not k.startswith("PFORTE_") or k in config})
    return config
